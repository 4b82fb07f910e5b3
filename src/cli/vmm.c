/* SPDX-License-Identifier: Apache-2.0 */
/* cloison-vmm: one KVM microVM per process.  Flags into a cl_vmm_config,
   then cl_vmm_run; everything else is in src/vmm. */
#include "common/error.h"
#include "common/util.h"
#include "vmm/vmm.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[]
    = "usage: cloison-vmm --kernel PATH [--initrd PATH] [--cmdline STR] [--cpus N]\n"
      "         [--memory SIZE] [--disk PATH[,ro][,serial=ID]]... [--net tap=NAME[,mac=MAC]]...\n"
      "         [--fs TAG=DIR[,ro]]... [--vsock CID] [--rng]\n"
      "         [--console serial|virtio|file=PATH]\n"
      "         [--api-socket PATH] [--restore DIR [--clone]] [--debug]\n"
      "         [--seccomp-log | --no-seccomp]\n"
      "\n"
      "  --clone        restore DIR as a clone of a template: its vsock CID is\n"
      "                 --vsock's, its shared directories the --fs given here\n"
      "\n"
      "Debugging:\n"
      "  --debug        print the set-up time, and at exit the stop reason and the\n"
      "                 metrics, on stderr\n"
      "  --seccomp-log  let syscalls outside the sandbox's allow-list through and\n"
      "                 have the kernel log them (to find a missing one)\n"
      "  --no-seccomp   run without the seccomp sandbox (never in production)\n";

static int
parse_uint (const char *s, const char *what, unsigned long max, unsigned long *out, cl_error_t *err)
{
  char *end;
  errno = 0;
  unsigned long v = strtoul (s, &end, 10);
  if (*s == 0 || *end || errno || v > max || s[0] == '-')
    return cl_error_make (err, 0, "%s: expected a number up to %lu, got `%s`", what, max, s);
  *out = v;
  return 0;
}

static int
parse_args (int argc, char **argv, struct cl_vmm_config *cfg, cl_error_t *err)
{
  static const struct option opts[] = {
    { "kernel", required_argument, 0, 'k' },
    { "initrd", required_argument, 0, 'i' },
    { "cmdline", required_argument, 0, 'c' },
    { "cpus", required_argument, 0, 'p' },
    { "memory", required_argument, 0, 'm' },
    { "disk", required_argument, 0, 'd' },
    { "net", required_argument, 0, 'n' },
    { "fs", required_argument, 0, 'f' },
    { "vsock", required_argument, 0, 'v' },
    { "rng", no_argument, 0, 'r' },
    { "console", required_argument, 0, 'o' },
    { "api-socket", required_argument, 0, 'a' },
    { "restore", required_argument, 0, 'R' },
    { "incoming", required_argument, 0, 'I' },
    { "clone", no_argument, 0, 'C' },
    { "debug", no_argument, 0, 'D' },
    { "seccomp-log", no_argument, 0, 'L' },
    { "no-seccomp", no_argument, 0, 'S' },
    { "help", no_argument, 0, 'h' },
    { "version", no_argument, 0, 'V' },
    { 0, 0, 0, 0 },
  };
  struct cl_vmm_disk *disks = NULL;
  struct cl_vmm_net *nets = NULL;
  struct cl_vmm_fs *fs = NULL;
  unsigned long n;
  int c;

  opterr = 0;
  while ((c = getopt_long (argc, argv, "", opts, NULL)) != -1)
    switch (c)
      {
      case 'k':
        cfg->kernel = optarg;
        break;
      case 'i':
        cfg->initrd = optarg;
        break;
      case 'c':
        cfg->cmdline = optarg;
        break;
      case 'p':
        if (parse_uint (optarg, "--cpus", CL_VMM_MAX_CPUS, &n, err) < 0)
          return -1;
        cfg->cpus = n;
        break;
      case 'm':
        if (cl_parse_size (optarg, "--memory", &cfg->memory, err) < 0)
          return -1;
        /* a bare number means MiB, as with QEMU and Firecracker */
        if (strspn (optarg, "0123456789") == strlen (optarg))
          cfg->memory <<= 20;
        break;
      case 'd':
        disks = realloc (disks, (cfg->ndisks + 1) * sizeof (*disks));
        if (cl_vmm_parse_disk (optarg, &disks[cfg->ndisks], err) < 0)
          return -1;
        cfg->disks = disks;
        cfg->ndisks++;
        break;
      case 'n':
        nets = realloc (nets, (cfg->nnets + 1) * sizeof (*nets));
        if (cl_vmm_parse_net (optarg, &nets[cfg->nnets], err) < 0)
          return -1;
        cfg->nets = nets;
        cfg->nnets++;
        break;
      case 'f':
        fs = realloc (fs, (cfg->nfs + 1) * sizeof (*fs));
        if (cl_vmm_parse_fs (optarg, &fs[cfg->nfs], err) < 0)
          return -1;
        cfg->fs = fs;
        cfg->nfs++;
        break;
      case 'v':
        if (parse_uint (optarg, "--vsock", 0xFFFFFFFEul, &n, err) < 0)
          return -1;
        if (n < 3)
          return cl_error_make (err, 0, "--vsock %lu: guest CIDs start at 3", n);
        cfg->vsock_cid = n;
        break;
      case 'r':
        cfg->rng = true;
        break;
      case 'o':
        if (strcmp (optarg, "serial") == 0)
          cfg->console = CL_VMM_CONSOLE_SERIAL;
        else if (strcmp (optarg, "virtio") == 0)
          cfg->console = CL_VMM_CONSOLE_VIRTIO;
        else if (strncmp (optarg, "file=", 5) == 0 && optarg[5])
          {
            cfg->console = CL_VMM_CONSOLE_FILE;
            cfg->console_path = optarg + 5;
            cfg->console_in_fd = -1; /* the file is output only */
          }
        else
          return cl_error_make (err, 0, "--console `%s`: expected serial, virtio or file=PATH",
                                optarg);
        break;
      case 'a':
        cfg->api_socket = optarg;
        break;
      case 'R':
        cfg->restore_dir = optarg;
        break;
      case 'C':
        cfg->restore_clone = true;
        break;
      case 'I':
        cfg->incoming = optarg;
        break;
      case 'D':
        cfg->debug = true;
        break;
      case 'L':
      case 'S':
        if (cfg->seccomp != CL_VMM_SECCOMP_KILL)
          return cl_error_make (err, 0, "--seccomp-log and --no-seccomp exclude each other");
        cfg->seccomp = c == 'L' ? CL_VMM_SECCOMP_LOG : CL_VMM_SECCOMP_OFF;
        break;
      case 'h':
        fputs (usage, stdout);
        exit (0);
      case 'V':
        printf ("cloison-vmm %s\n", CLOISON_VERSION);
        exit (0);
      default:
        return cl_error_make (err, 0, "unknown or incomplete option `%s` (see --help)",
                              argv[optind - 1]);
      }
  if (optind < argc)
    return cl_error_make (err, 0, "unexpected argument `%s`", argv[optind]);
  if (cfg->restore_dir && cfg->incoming)
    return cl_error_make (err, 0, "--restore and --incoming exclude each other");
  if (cfg->restore_clone && (cfg->restore_dir == NULL || cfg->vsock_cid == 0))
    return cl_error_make (err, 0, "--clone needs --restore DIR and --vsock CID");
  if (cfg->kernel == NULL && cfg->restore_dir == NULL && cfg->incoming == NULL)
    return cl_error_make (err, 0, "--kernel PATH is required (see --help)");
  return 0;
}

int
main (int argc, char **argv)
{
  struct cl_vmm_config cfg;
  cl_error_t err = NULL;
  int status = -1;

  cl_vmm_config_init (&cfg);
  cfg.guest_status = &status;
  if (parse_args (argc, argv, &cfg, &err) < 0 || cl_vmm_run (&cfg, &err) < 0)
    return cl_error_report (&err, "cloison-vmm");
  return status > 0 ? status : 0;
}
