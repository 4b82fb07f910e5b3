#include <stdio.h>
#include <string.h>

int
main (int argc, char **argv)
{
  if (argc > 1 && strcmp (argv[1], "--version") == 0)
    {
      printf ("vmm-placeholder %s\n", CLOISON_VERSION);
      return 0;
    }
  fprintf (stderr, "%s: not built yet\n", argv[0]);
  return 1;
}
