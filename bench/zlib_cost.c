/*
 * zlib_cost: what one message costs comet's permessage-deflate and a
 * client's inflate, zlib alone, as ngx_goim_comet_deflate.c uses it: raw
 * deflate, a 15-bit window, memLevel 8, the stream reset before every
 * message, a sync flush.  For each level, a hot loop (the stream's state
 * stays in the caches) and a cold one (8 MB written between two messages,
 * as a worker's other work does; that time is left out).
 *
 *   make bench
 *   build/bench/zlib_cost FILE [ITERATIONS]     # FILE: the message
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>


#define ZC_MAX    (1024 * 1024)
#define ZC_EVICT  (8 * 1024 * 1024)


static double
now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}


static size_t
compress_one(z_stream *zs, unsigned char *in, size_t n, unsigned char *out)
{
    deflateReset(zs);
    zs->next_in = in;
    zs->avail_in = (uInt) n;
    zs->next_out = out;
    zs->avail_out = ZC_MAX;

    if (deflate(zs, Z_SYNC_FLUSH) != Z_OK || zs->avail_in) {
        fprintf(stderr, "zlib_cost: deflate failed\n");
        exit(1);
    }

    /* the sync flush's 00 00 ff ff, as RFC 7692 leaves it out */
    return ZC_MAX - zs->avail_out - 4;
}


/* writes 8 MB (the caches' worth and more); returns the time it took */
static double
evict_caches(unsigned char *evict, int i)
{
    double  t;

    t = now();
    memset(evict, i, ZC_EVICT);

    return now() - t;
}


int
main(int argc, char **argv)
{
    int             level, cold, iters, i;
    FILE           *f;
    size_t          n, clen;
    double          t, evicting, us_deflate, us_inflate;
    z_stream        zs, is;
    unsigned char  *in, *out, *back, *evict;
    static const unsigned char  tail[4] = { 0, 0, 0xff, 0xff };

    if (argc < 2) {
        fprintf(stderr, "usage: zlib_cost FILE [ITERATIONS]\n");
        return 2;
    }

    iters = argc > 2 ? atoi(argv[2]) : 20000;
    in = malloc(ZC_MAX);
    out = malloc(ZC_MAX);
    back = malloc(ZC_MAX);
    evict = malloc(ZC_EVICT);

    f = fopen(argv[1], "rb");
    if (f == NULL || in == NULL || out == NULL || back == NULL
        || evict == NULL)
    {
        perror("zlib_cost");
        return 1;
    }

    n = fread(in, 1, ZC_MAX, f);
    fclose(f);

    printf("| level | caches | bytes in | bytes out | deflate us | "
           "inflate us |\n|---|---|---|---|---|---|\n");

    for (level = 1; level <= 9; level += (level == 1 ? 5 : 3)) {
        for (cold = 0; cold <= 1; cold++) {
            memset(&zs, 0, sizeof(zs));
            memset(&is, 0, sizeof(is));

            if (deflateInit2(&zs, level, Z_DEFLATED, -MAX_WBITS, 8,
                             Z_DEFAULT_STRATEGY) != Z_OK
                || inflateInit2(&is, -MAX_WBITS) != Z_OK)
            {
                fprintf(stderr, "zlib_cost: init failed\n");
                return 1;
            }

            clen = 0;
            evicting = 0;
            t = now();

            for (i = 0; i < iters; i++) {
                evicting += cold ? evict_caches(evict, i) : 0;

                clen = compress_one(&zs, in, n, out);
            }

            us_deflate = (now() - t - evicting) / iters * 1e6;

            evicting = 0;
            t = now();

            for (i = 0; i < iters; i++) {
                evicting += cold ? evict_caches(evict, i) : 0;

                inflateReset(&is);
                is.next_in = out;
                is.avail_in = (uInt) clen;
                is.next_out = back;
                is.avail_out = ZC_MAX;
                (void) inflate(&is, Z_SYNC_FLUSH);
                is.next_in = (unsigned char *) tail;
                is.avail_in = 4;
                (void) inflate(&is, Z_SYNC_FLUSH);
            }

            us_inflate = (now() - t - evicting) / iters * 1e6;

            if (ZC_MAX - is.avail_out != n || memcmp(back, in, n) != 0) {
                fprintf(stderr, "zlib_cost: the round trip differs\n");
                return 1;
            }

            printf("| %d | %s | %zu | %zu | %.2f | %.2f |\n", level,
                   cold ? "cold" : "hot", n, clen, us_deflate, us_inflate);

            deflateEnd(&zs);
            inflateEnd(&is);
        }
    }

    return 0;
}
