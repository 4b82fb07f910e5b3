/* SPDX-License-Identifier: Apache-2.0 */
/* Returns non-zero: start.S then triple faults on purpose. */
#include "lib.h"

int main (void)
{
  puts ("about to triple fault\n");
  return 1;
}
