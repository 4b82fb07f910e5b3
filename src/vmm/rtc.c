/* SPDX-License-Identifier: Apache-2.0 */
/* MC146818 CMOS RTC on ports 0x70/0x71: the clock registers read the
   host's UTC time (BCD, 24-hour), so the guest's date is right; the rest of
   CMOS is plain storage. */
#include "vmm/devices.h"
#include "vmm/machine.h"

#include "common/util.h"

#include <string.h>
#include <time.h>

struct rtc
{
  pthread_mutex_t lock;
  uint8_t index;
  uint8_t cmos[128];
};

static uint8_t
bcd (int v)
{
  return ((v / 10) << 4) | (v % 10);
}

static uint8_t
rtc_read (struct rtc *r, uint8_t reg)
{
  time_t now = time (NULL);
  struct tm tm;
  gmtime_r (&now, &tm);
  switch (reg)
    {
    case 0x00:
      return bcd (tm.tm_sec);
    case 0x02:
      return bcd (tm.tm_min);
    case 0x04:
      return bcd (tm.tm_hour);
    case 0x06:
      return bcd (tm.tm_wday + 1);
    case 0x07:
      return bcd (tm.tm_mday);
    case 0x08:
      return bcd (tm.tm_mon + 1);
    case 0x09:
      return bcd (tm.tm_year % 100);
    case 0x32:
      return bcd ((tm.tm_year + 1900) / 100);
    case 0x0A:
      return 0x26; /* no update in progress, 32.768 kHz */
    case 0x0B:
      return 0x02; /* 24-hour, BCD */
    case 0x0C:
      return 0x00;
    case 0x0D:
      return 0x80; /* battery good */
    default:
      return r->cmos[reg];
    }
}

static void
rtc_pio (void *opaque, uint64_t offset, void *data, unsigned len, bool write)
{
  struct rtc *r = opaque;
  uint8_t *b = data;
  pthread_mutex_lock (&r->lock);
  if (offset == 0)
    {
      if (write)
        r->index = b[0] & 0x7F; /* bit 7: NMI mask */
      else
        {
          memset (b, 0, len);
          b[0] = r->index;
        }
    }
  else if (write)
    r->cmos[r->index] = b[0];
  else
    {
      memset (b, 0, len);
      b[0] = rtc_read (r, r->index);
    }
  pthread_mutex_unlock (&r->lock);
}

int
cl_vmm_rtc_create (struct vm *vm, cl_error_t *err)
{
  struct rtc *r = cl_xmalloc0 (sizeof (*r));
  pthread_mutex_init (&r->lock, NULL);
  /* glibc reads its time zone file on the first conversion, even for UTC:
     do it now, not on a sandboxed vCPU thread. */
  tzset ();
  cl_vmm_vm_add_destructor (vm, free, r);
  return cl_vmm_vm_io_register (vm, true, 0x70, 2, rtc_pio, r, err);
}
