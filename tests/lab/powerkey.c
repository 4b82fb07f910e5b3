/* SPDX-License-Identifier: Apache-2.0 */
/* powerkey: waits in a nested guest for a press of the ACPI power button
 * (busybox has no evdev reader).
 *   powerkey READY_LINE [SECONDS]
 * Opens the /dev/input/event* device named "Power Button", prints
 * READY_LINE (nothing is missed from then on), then waits for KEY_POWER
 * (code 116) pressed.  Exits 0 on the press, 1 on timeout (default 30 s),
 * 2 when there is no such device. */
#include <fcntl.h>
#include <linux/input.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int open_power_button(void)
{
    for (int i = 0; i < 32; i++) {
        char path[32], name[64] = "";
        snprintf(path, sizeof path, "/dev/input/event%d", i);
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        if (ioctl(fd, EVIOCGNAME(sizeof name - 1), name) >= 0 && strcmp(name, "Power Button") == 0) {
            printf("powerkey: %s is the Power Button\n", path);
            return fd;
        }
        close(fd);
    }
    return -1;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: powerkey READY_LINE [SECONDS]\n");
        return 2;
    }
    int seconds = argc == 3 ? atoi(argv[2]) : 30, fd = -1;
    for (int i = 0; i < 50 && fd < 0; i++) {  /* the button driver may still be probing */
        fd = open_power_button();
        if (fd < 0)
            usleep(100000);
    }
    if (fd < 0) {
        printf("powerkey: no input device named \"Power Button\"\n");
        return 2;
    }
    printf("%s\n", argv[1]);
    fflush(stdout);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (poll(&p, 1, seconds * 1000) > 0) {
        struct input_event ev;
        if (read(fd, &ev, sizeof ev) != sizeof ev)
            return 2;
        if (ev.type == EV_KEY && ev.code == KEY_POWER && ev.value == 1) {
            printf("powerkey: KEY_POWER pressed\n");
            return 0;
        }
    }
    printf("powerkey: no KEY_POWER within %d s\n", seconds);
    return 1;
}
