// A C++ program that allocates only through new and delete, linked with
// memshim's archive ahead of libstdc++ (c_tests/cxx.sh): nothing in it
// names a memshim symbol, yet every form of new and delete must be served
// by memshim. The proof: memshim_get_stats, declared weak — a weak
// reference does not make the linker take memshim's object, so it is
// non-null only because new/delete did.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <new>

extern "C" {
struct memshim_stats {
    uint64_t heap_bytes_in_use, heap_bytes_free, heap_bytes_mapped, heap_peak_bytes_in_use,
        live_allocations, total_allocations, total_frees, heap_spans, heap_bytes_metadata,
        heap_slabs, frames_total, frames_free;
};
void memshim_get_stats(struct memshim_stats *out) __attribute__((weak));
}

static unsigned passed, failed;

static void check(bool ok, const char *what)
{
    std::printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    (ok ? passed : failed)++;
}

static memshim_stats stats()
{
    memshim_stats s{};
    memshim_get_stats(&s);
    return s;
}

struct alignas(4096) Page {
    unsigned char bytes[4096];
};

struct Node {
    Node *next;
    long value;
};

static unsigned handler_calls;

static void give_up_handler()
{
    // The first call pretends to free memory; the second gives up.
    if (++handler_calls == 2)
        std::set_new_handler(nullptr);
}

static void throwing_handler()
{
    ++handler_calls;
    throw std::bad_alloc();
}

// Too large for any heap, but not an overflow the compiler would reject.
static volatile size_t huge = SIZE_MAX / 2;

int main(int argc, char **)
{
    if (argc > 1) { // "oom": a failing new where nothing can throw std::bad_alloc
        char *p = new char[huge];
        std::printf("new returned %p\n", static_cast<void *>(p));
        return 0;
    }
    check(memshim_get_stats != nullptr, "memshim's object was linked in by new/delete alone");
    if (!memshim_get_stats) {
        std::printf("%u passed, %u failed\n", passed, failed + 1);
        return 1;
    }

    // The unwinder keeps what it allocates on the first throw (a static
    // executable's sorted FDE table): throw once before counting.
    try {
        throw std::bad_alloc();
    } catch (const std::bad_alloc &) {
    }

    memshim_stats before = stats();
    Node *head = nullptr;
    for (long i = 0; i < 1000; i++)
        head = new Node{head, i};
    int *array = new int[10000]();
    Page *page = new Page;
    Page *pages = new Page[3];
    char *zero = new char[0];
    Node *quiet = new (std::nothrow) Node{nullptr, 7};
    memshim_stats during = stats();
    check(during.total_allocations - before.total_allocations == 1005,
          "new, new[], aligned new, new[0] and nothrow new counted by memshim (1005)");
    check(during.live_allocations - before.live_allocations == 1005, "1005 blocks live in memshim");
    check(reinterpret_cast<uintptr_t>(page) % 4096 == 0 && reinterpret_cast<uintptr_t>(pages) % 4096 == 0,
          "alignas(4096) new and new[] are 4096-byte aligned");
    check(reinterpret_cast<uintptr_t>(head) % 16 == 0, "plain new is 16-byte aligned");
    check(zero != nullptr, "new char[0] returns a pointer");
    bool zeroed = true;
    for (int i = 0; i < 10000; i++)
        zeroed = zeroed && array[i] == 0;
    check(zeroed, "new int[n]() is zeroed");

    while (head) { // sized delete (C++14) where the compiler knows the size
        Node *next = head->next;
        delete head;
        head = next;
    }
    delete[] array;
    delete page;    // aligned (and sized) delete
    delete[] pages; // aligned array delete
    delete[] zero;
    operator delete(quiet, std::nothrow);
    memshim_stats after = stats();
    check(after.live_allocations == before.live_allocations, "every delete form gave its block back to memshim");
    check(after.total_frees - before.total_frees == 1005, "1005 frees counted by memshim");

    bool threw = false;
    try {
        char *p = new char[huge];
        delete[] p;
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    check(threw, "a failing new throws std::bad_alloc");

    threw = false;
    try {
        void *p = operator new(64, std::align_val_t(48));
        operator delete(p, std::align_val_t(48));
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    check(threw, "an alignment that is not a power of two throws std::bad_alloc");

    check(new (std::nothrow) char[huge] == nullptr, "a failing nothrow new returns nullptr");
    check(operator new(huge, std::align_val_t(64), std::nothrow) == nullptr,
          "a failing aligned nothrow new returns nullptr");

    handler_calls = 0;
    std::set_new_handler(give_up_handler);
    threw = false;
    try {
        char *p = new char[huge];
        delete[] p;
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    check(threw && handler_calls == 2, "the new-handler is called until it uninstalls itself, then bad_alloc");

    handler_calls = 0;
    std::set_new_handler(give_up_handler);
    check(new (std::nothrow) char[huge] == nullptr && handler_calls == 2,
          "nothrow new calls the new-handler too, then returns nullptr");

    handler_calls = 0;
    std::set_new_handler(throwing_handler);
    threw = false;
    try {
        void *p = operator new(huge, std::align_val_t(256));
        operator delete(p, std::align_val_t(256));
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    std::set_new_handler(nullptr);
    check(threw && handler_calls == 1, "a new-handler's own bad_alloc reaches the caller");

    check(stats().live_allocations == before.live_allocations, "nothing leaked");
    std::printf("%u passed, %u failed\n", passed, failed);
    return failed != 0;
}
