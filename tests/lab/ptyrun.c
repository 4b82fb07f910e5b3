/* SPDX-License-Identifier: Apache-2.0 */
/* ptyrun: runs a command on a new pty (its controlling terminal, on its
   stdin/stdout/stderr), as a user's terminal would, for the lab's tests
   of `cloison exec` with a tty (busybox has no `script`).

   Usage: ptyrun [-i INPUT] [-w ROWSxCOLS] ROWSxCOLS CMD...
     ROWSxCOLS   the pty's size when the command starts
     -i INPUT    typed on the terminal once the command printed something
                 (or after 3 s of silence; C escapes \n \r \t \xHH are decoded)
     -w R2xC2    the terminal resized to R2xC2 (SIGWINCH to the command)
                 at the same time
   Prints all the command's terminal output on stdout (ending with a
   newline), and exits with the
   command's exit status (128+N for signal N). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static void
parse_size (const char *s, struct winsize *ws)
{
  unsigned rows, cols;

  if (sscanf (s, "%ux%u", &rows, &cols) != 2)
    {
      fprintf (stderr, "ptyrun: size `%s`: expected ROWSxCOLS\n", s);
      exit (2);
    }
  *ws = (struct winsize){ .ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols };
}

static size_t
unescape (const char *s, char *out)
{
  size_t n = 0;

  for (; *s; s++)
    {
      if (*s != '\\' || s[1] == '\0')
        {
          out[n++] = *s;
          continue;
        }
      s++;
      switch (*s)
        {
        case 'n':
          out[n++] = '\n';
          break;
        case 'r':
          out[n++] = '\r';
          break;
        case 't':
          out[n++] = '\t';
          break;
        case 'x':
          {
            char hex[3] = { s[1], s[1] ? s[2] : 0, 0 }, *end;
            out[n++] = (char)strtoul (hex, &end, 16);
            s += end - hex;
            break;
          }
        default:
          out[n++] = *s;
        }
    }
  return n;
}

int
main (int argc, char **argv)
{
  struct winsize ws, resize = { 0 };
  char *input = NULL;
  size_t input_len = 0;
  bool want_resize = false, started = false;
  char last = '\n';
  int c, master, st;
  pid_t pid;

  while ((c = getopt (argc, argv, "+i:w:")) != -1)
    if (c == 'i')
      {
        input = malloc (strlen (optarg) + 1);
        input_len = unescape (optarg, input);
      }
    else if (c == 'w')
      parse_size (optarg, &resize), want_resize = true;
    else
      return 2;
  if (argc - optind < 2)
    {
      fprintf (stderr, "usage: ptyrun [-i INPUT] [-w ROWSxCOLS] ROWSxCOLS CMD...\n");
      return 2;
    }
  parse_size (argv[optind], &ws);
  master = posix_openpt (O_RDWR | O_NOCTTY);
  if (master < 0 || grantpt (master) < 0 || unlockpt (master) < 0)
    {
      perror ("ptyrun: posix_openpt");
      return 1;
    }
  ioctl (master, TIOCSWINSZ, &ws);
  pid = fork ();
  if (pid < 0)
    return 1;
  if (pid == 0)
    {
      int slave;
      setsid ();
      slave = open (ptsname (master), O_RDWR);
      if (slave < 0 || ioctl (slave, TIOCSCTTY, 0) < 0)
        {
          perror ("ptyrun: slave");
          _exit (1);
        }
      dup2 (slave, 0), dup2 (slave, 1), dup2 (slave, 2);
      close (slave), close (master);
      execvp (argv[optind + 1], argv + optind + 1);
      perror ("ptyrun: exec");
      _exit (127);
    }
  for (;;)
    {
      char buf[4096];
      struct pollfd p = { .fd = master, .events = POLLIN };
      ssize_t n = 0;

      if (started || poll (&p, 1, 3000) != 0)
        {
          n = read (master, buf, sizeof buf);
          if (n < 0 && errno == EINTR)
            continue;
          if (n <= 0) /* EIO: no one holds the slave any more */
            break;
          fwrite (buf, 1, (size_t)n, stdout);
          fflush (stdout);
          last = buf[n - 1];
        }
      if (!started)
        {
          started = true;
          if (want_resize)
            ioctl (master, TIOCSWINSZ, &resize);
          if (input_len && write (master, input, input_len) != (ssize_t)input_len)
            perror ("ptyrun: input");
        }
    }
  if (last != '\n')
    putchar ('\n'); /* whoever reads our output by lines gets the last */
  while (waitpid (pid, &st, 0) < 0)
    if (errno != EINTR)
      return 1;
  return WIFEXITED (st) ? WEXITSTATUS (st) : 128 + WTERMSIG (st);
}
