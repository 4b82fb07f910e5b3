/* SPDX-License-Identifier: Apache-2.0 */
/* The guest agent's wire protocol (cloison-agent in the VM initramfs, and
   src/manager/vm_agent.c on the host), over one AF_VSOCK stream
   connection per command to CL_AGENT_PORT.

   Every message is a frame: 1 byte type, 4 bytes payload length (big
   endian), then the payload (at most CL_AGENT_MAX_FRAME bytes).

   Host -> guest, the request:
     'A' one argument of the command (argv[0] first), at least one
     'E' one KEY=VALUE of the environment (none: PATH=CL_AGENT_DEFAULT_PATH)
     'T' run the command on a new pty (optional): 4 bytes, rows and
         columns (2 bytes big endian each; 0 0: leave the size unset)
     'R' run (empty payload)
   VM-isolated containers (cloison-runtime, src/manager/vm_container.c)
   add, before 'R':
     'J' a JSON object (at most CL_AGENT_MAX_SPEC bytes): "process" (an OCI
         process object, applied by the container engine's own code:
         user, groups, capabilities, rlimits, no_new_privs, cwd, env,
         seccomp from "seccomp", the spec's linux.seccomp), and, for the
         container's first process only, "mounts" (the spec's mounts that
         are not binds, which the host made before sharing the rootfs),
         "hostname", "network" ([{"mac", "addrs": ["A/P"], "gateway"}])
         and "entropy" (hex bytes mixed into the guest's RNG, which is
         then reseeded), "time" (seconds since the epoch, the guest clock
         is stepped to it), "rootfs_readonly" (the share is mounted
         read-only: `--fs`, the first request mounts it)
   Host -> guest after 'R', while the command runs:
     'I' bytes for the command's stdin (1..CL_AGENT_MAX_FRAME)
     'C' the host's stdin ended (empty payload): the agent closes the
         command's stdin (on a pty: types the terminal's EOF character)
     'W' the terminal's new size (pty only): 4 bytes as in 'T'
     'K' a signal for the command: 4 bytes big endian (`kill`)
   Guest -> host, the replies:
     'O' bytes the command wrote on stdout (on a pty: all its output)
     'E' bytes the command wrote on stderr
     'X' the exit status: 4 bytes big endian, 0..255 (128+N for signal N),
         the last frame.
   Without 'I' frames the command's stdin is empty once 'C' arrives.  The
   agent reads the host's frames only as fast as the command takes its
   stdin, and sends the exit status even when stdin frames are left
   unread.  When the host closes the connection before 'X', the agent
   kills the command's process group.  The host treats every reply as
   untrusted: bounded lengths, known types only. */
#ifndef CLOISON_AGENT_PROTOCOL_H
#define CLOISON_AGENT_PROTOCOL_H

#define CL_AGENT_PORT 1024u
/* A VM instance cloned from a template (docs/templates.md): its init
   waits on this port for one request, 'J' {"cmdline", "hostname",
   "entropy", "time"} then 'R', answered by 'X' 0 (2: refused), before it
   probes its disks and NICs; `cloison exec` never reaches it. */
#define CL_AGENT_GO_PORT 1025u
#define CL_AGENT_MAX_FRAME 65536u
#define CL_AGENT_MAX_ARGS 4096u /* 'A' + 'E' frames in one request */
#define CL_AGENT_HEADER 5u

#define CL_AGENT_ARG 'A'
#define CL_AGENT_ENV 'E'
#define CL_AGENT_PTY 'T'
#define CL_AGENT_RUN 'R'
#define CL_AGENT_STDIN 'I'
#define CL_AGENT_STDIN_EOF 'C'
#define CL_AGENT_WINSIZE 'W'
#define CL_AGENT_SPEC 'J'
#define CL_AGENT_SIGNAL 'K'
#define CL_AGENT_MAX_SPEC (1u << 20)
#define CL_AGENT_STDOUT 'O'
#define CL_AGENT_STDERR 'E'
#define CL_AGENT_EXIT 'X'

#define CL_AGENT_WINSIZE_LEN 4u

#define CL_AGENT_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#include <stdint.h>

/* The 5-byte frame header, both ways (the agent and the host share it). */
static inline void
cl_agent_header_encode (unsigned char h[CL_AGENT_HEADER], char type, uint32_t len)
{
  h[0] = (unsigned char)type;
  h[1] = (unsigned char)(len >> 24);
  h[2] = (unsigned char)(len >> 16);
  h[3] = (unsigned char)(len >> 8);
  h[4] = (unsigned char)len;
}

static inline uint32_t
cl_agent_be32 (const unsigned char *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* 'T' and 'W' payloads: rows then columns, 2 bytes big endian each. */
static inline void
cl_agent_winsize_encode (unsigned char p[CL_AGENT_WINSIZE_LEN], uint16_t rows, uint16_t cols)
{
  p[0] = (unsigned char)(rows >> 8);
  p[1] = (unsigned char)rows;
  p[2] = (unsigned char)(cols >> 8);
  p[3] = (unsigned char)cols;
}

static inline void
cl_agent_winsize_decode (const unsigned char p[CL_AGENT_WINSIZE_LEN], uint16_t *rows,
                         uint16_t *cols)
{
  *rows = (uint16_t)(p[0] << 8 | p[1]);
  *cols = (uint16_t)(p[2] << 8 | p[3]);
}

#endif
