/* Uses libm next to memshim: linked as `cc libm_user.c libmemshim.a -lm`,
 * sqrt and fmod must come from libm, not from compiler_builtins' copies
 * inside the archive (scripts/finish-archive.sh localises those). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    (void)argv;
    volatile double x = 2.0 + (argc - 1), y = 7.5;
    double r = sqrt(x), m = fmod(y, x);
    char *buf = malloc(64);
    if (!buf)
        return 1;
    snprintf(buf, 64, "%.6f %.6f", r, m);
    int ok = r > 1.414213 && r < 1.414214 && m == 1.5;
    printf("%s %s\n", buf, ok ? "ok" : "WRONG");
    free(buf);
    return ok ? 0 : 1;
}
