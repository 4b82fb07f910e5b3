/* SPDX-License-Identifier: Apache-2.0 */
/* The benchmark guest: one byte on COM1 (the first exit), then off. */
#include "lib.h"

int main (void)
{
  putc ('!');
  return 0;
}
