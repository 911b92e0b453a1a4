/* The memory functions through the C symbols of the host build: the vector
 * path the build chose by itself (nothing here calls memshim_enable_simd
 * before the checks), shown by the vector registers a long memcpy leaves
 * changed, and the results of every function where the paths change. */
#include "harness.h"

/* probe_zmm16(dst, src, n) / probe_ymm0(...): memcpy(dst, src, n) with the
 * register holding all ones; 1 when the call changed it. zmm16 is what the
 * AVX-512 path copies through, ymm0 the AVX2 path (whose vzeroupper also
 * clears ymm0's upper half); the register path touches neither. Both are
 * caller-saved, so memcpy may change them, and C code compiled without
 * -mavx never holds values there. */
int probe_zmm16(void *dst, const void *src, size_t n);
int probe_ymm0(void *dst, const void *src, size_t n);
__asm__(".text\n"
        ".globl probe_zmm16\n"
        "probe_zmm16:\n"
        "    push %rbx\n" /* aligns the stack for the call */
        "    vpternlogd $0xff, %zmm16, %zmm16, %zmm16\n"
        "    call memcpy@PLT\n"
        "    vpternlogd $0xff, %zmm17, %zmm17, %zmm17\n"
        "    vpcmpeqd %zmm17, %zmm16, %k1\n"
        "    xor %eax, %eax\n"
        "    kortestw %k1, %k1\n" /* CF: all 16 dwords still all ones */
        "    setnc %al\n"
        "    pop %rbx\n"
        "    ret\n"
        ".globl probe_ymm0\n"
        "probe_ymm0:\n"
        "    push %rbx\n"
        "    vpcmpeqd %ymm0, %ymm0, %ymm0\n"
        "    call memcpy@PLT\n"
        "    vpcmpeqd %ymm1, %ymm1, %ymm1\n"
        "    vpcmpeqd %ymm1, %ymm0, %ymm0\n"
        "    vpmovmskb %ymm0, %eax\n"
        "    vzeroupper\n"
        "    cmp $-1, %eax\n"
        "    setne %al\n"
        "    movzbl %al, %eax\n"
        "    pop %rbx\n"
        "    ret\n");

/* The width the host build must choose, from what libgcc reads of CPUID and
 * XCR0: AVX-512 (F, BW, VL, BMI2), except on Intel cores without AVX-VNNI
 * (where 512-bit moves lower the clock), else AVX2, else none. */
static int expected_width(void)
{
    __builtin_cpu_init();
    bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("bmi2");
    if (avx512 && (__builtin_cpu_supports("avxvnni") || !__builtin_cpu_is("intel")))
        return 64;
    return __builtin_cpu_supports("avx2") ? 32 : 0;
}

static unsigned char src_buf[8192] __attribute__((aligned(64)));
static unsigned char dst_buf[8192] __attribute__((aligned(64)));

TEST(long_memcpy_takes_the_widest_vector_path_by_itself)
{
    MEMSHIM_ONLY();
    int want = expected_width();
    memset(src_buf, 0x5a, sizeof src_buf);
    /* The first long call reads the CPU; then a second one is probed too. */
    for (int round = 0; round < 2; round++) {
        if (__builtin_cpu_supports("avx512f"))
            CHECKF(probe_zmm16(dst_buf, src_buf, 4096) == (want == 64),
                   "zmm16 changed by memcpy: %d, expected width %d", !(want == 64), want);
        if (__builtin_cpu_supports("avx2"))
            CHECKF(probe_ymm0(dst_buf, src_buf, 4096) == (want == 32),
                   "ymm0 changed by memcpy: %d, expected width %d", !(want == 32), want);
    }
    CHECK(memcmp(dst_buf, src_buf, 4096) == 0);
    CHECKF(memshim_simd_width() == want, "memshim_simd_width() %d, expected %d",
           memshim_simd_width(), want);
}

TEST(enable_simd_keeps_the_host_choice)
{
    MEMSHIM_ONLY();
    int want = expected_width();
    CHECK(memshim_enable_simd() == (want != 0));
    CHECK(memshim_simd_width() == want);
    memset(src_buf, 0x21, 300);
    if (want == 64)
        CHECK(probe_zmm16(dst_buf, src_buf, 300) == 1);
    CHECK(memcmp(dst_buf, src_buf, 300) == 0);
}

/* Every function against a byte loop at the sizes where the paths change,
 * at a few alignments: the exported code itself, as a C program calls it. */
static bool same(const unsigned char *a, const unsigned char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return false;
    return true;
}

static const size_t sizes[] = {0, 1, 2, 3, 4, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127,
                               128, 129, 255, 256, 257, 511, 512, 513, 767, 768, 1000, 4096, 5000};

TEST(functions_agree_with_byte_loops_on_the_default_path)
{
    static unsigned char ref[8192];
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        for (size_t sa = 0; sa < 3; sa++) {
            for (size_t da = 0; da < 3; da++) {
                fill_pattern(src_buf, sizeof src_buf, (unsigned)(n + sa));
                fill_pattern(dst_buf, sizeof dst_buf, 7);
                memcpy(ref, dst_buf, sizeof ref);
                unsigned char *d = dst_buf + 64 + da * 5, *s = src_buf + 64 + sa * 3;
                CHECK(memcpy(d, s, n) == d);
                CHECKF(same(d, s, n) && d[-1] == ref[d - dst_buf - 1] && d[n] == ref[d - dst_buf + n],
                       "memcpy n=%zu sa=%zu da=%zu", n, sa, da);
                CHECKF(memcmp(d, s, n) == 0 && bcmp(d, s, n) == 0, "memcmp equal n=%zu", n);
                if (n > 0) {
                    d[n - 1] ^= 0x80;
                    CHECKF(memcmp(d, s, n) != 0 && bcmp(d, s, n) != 0, "memcmp last n=%zu", n);
                    CHECKF((memcmp(d, s, n) > 0) == (d[n - 1] > s[n - 1]), "memcmp sign n=%zu", n);
                    d[0] ^= 0x01;
                    CHECKF((memcmp(d, s, n) > 0) == (d[0] > s[0]), "memcmp first n=%zu", n);
                }
                CHECK(memset(d, 0x3c, n) == d);
                bool set_ok = d[-1] == ref[d - dst_buf - 1] && d[n] == ref[d - dst_buf + n];
                for (size_t i = 0; i < n; i++)
                    set_ok &= d[i] == 0x3c;
                CHECKF(set_ok, "memset n=%zu da=%zu", n, da);
                bzero(d, n);
                bool zero_ok = d[n] == ref[d - dst_buf + n];
                for (size_t i = 0; i < n; i++)
                    zero_ok &= d[i] == 0;
                CHECKF(zero_ok, "bzero n=%zu da=%zu", n, da);
            }
        }
        /* memmove both ways by 1, 33 and n/2 + 1 bytes. */
        size_t shifts[] = {1, 33, n / 2 + 1};
        for (size_t j = 0; j < 3; j++) {
            for (int up = 0; up < 2; up++) {
                fill_pattern(dst_buf, sizeof dst_buf, 9);
                memcpy(ref, dst_buf, sizeof ref);
                size_t from = up ? 100 : 100 + shifts[j], to = up ? 100 + shifts[j] : 100;
                CHECK(memmove(dst_buf + to, dst_buf + from, n) == dst_buf + to);
                CHECKF(same(dst_buf + to, ref + from, n), "memmove n=%zu shift=%zu up=%d", n,
                       shifts[j], up);
            }
        }
    }
}
