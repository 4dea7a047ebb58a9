/* Fuzz target: relay addresses and base64url (proto/address.h).  Addresses
 * come from outside in invites (relay_address) and intros (reply_address),
 * and host:port pairs from the command line.
 *
 * Input: a mode byte, then the text.
 *   mode 0  alcove_addr_parse; an accepted address must print back to the
 *           same text (the format is canonical) and parse to the same value;
 *           a refusal must come with a reason.
 *   mode 1  alcove_hostport_parse (port 0 allowed when bit 7 of the mode is
 *           set); an accepted pair must make a printable address.
 *   mode 2  base64url decode; accepted text must re-encode to itself. */
#include "fuzz_common.h"

#include "address.h"
#include "err.h"

static char text[8192];

static void addr(size_t n)
{
    alcove_relay_addr a, b;
    char out[ALCOVE_ADDR_STR_MAX];
    const char *why = NULL;

    memset(&a, 0, sizeof a);
    if (alcove_addr_parse(text, &a, &why) != 0) {
        FUZZ_CHECK(why != NULL && *why != '\0');
        return;
    }
    FUZZ_CHECK(strlen(a.host) <= ALCOVE_ADDR_HOST_MAX && a.port != 0);
    FUZZ_CHECK(alcove_addr_format(&a, out, sizeof out) == 0);
    FUZZ_CHECK(strlen(out) == n && memcmp(out, text, n) == 0);
    memset(&b, 0, sizeof b);
    FUZZ_CHECK(alcove_addr_parse(out, &b, NULL) == 0);
    FUZZ_CHECK(memcmp(a.key, b.key, sizeof a.key) == 0 &&
               strcmp(a.host, b.host) == 0 &&
               a.host_is_ipv6 == b.host_is_ipv6 && a.port == b.port);
}

static void hostport(int allow0)
{
    char host[ALCOVE_ADDR_HOST_MAX + 1];
    alcove_relay_addr a;
    char out[ALCOVE_ADDR_STR_MAX];
    const char *why = NULL;
    uint16_t port = 0;
    int v6 = 0;

    if (alcove_hostport_parse(text, host, sizeof host, &v6, &port, allow0,
                              &why) != 0) {
        FUZZ_CHECK(why != NULL && *why != '\0');
        return;
    }
    FUZZ_CHECK(allow0 || port != 0);
    if (port == 0)
        return;
    memset(&a, 0, sizeof a);
    snprintf(a.host, sizeof a.host, "%s", host);
    a.host_is_ipv6 = v6;
    a.port = port;
    FUZZ_CHECK(alcove_addr_format(&a, out, sizeof out) == 0);
    FUZZ_CHECK(alcove_addr_parse(out, &a, NULL) == 0);
}

static void b64(size_t n)
{
    static uint8_t bin[8192];
    static char again[8192 * 2];
    size_t len = 0;

    if (alcove_b64url_decode(text, n, bin, sizeof bin, &len) != 0)
        return;
    FUZZ_CHECK(len <= n);
    FUZZ_CHECK(alcove_b64url_encode(bin, len, again, sizeof again) == 0);
    FUZZ_CHECK(strlen(again) == n && memcmp(again, text, n) == 0);
}

static void write_seeds(const char *dir)
{
    static const char *const seeds[][2] = {
        {"addr-dns", "\x00" "alcove://AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8@relay.example.org:7700"},
        {"addr-v4", "\x00" "alcove://AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8@127.0.0.1:1"},
        {"addr-v6", "\x00" "alcove://AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8@[2001:db8::1]:65535"},
        {"hostport", "\x01" "localhost:7700"},
        {"hostport-v6-0", "\x81" "[::1]:0"},
        {"b64", "\x02" "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"},
    };
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++)
        fuzz_write_seed(dir, seeds[i][0], seeds[i][1], 1 + strlen(seeds[i][1] + 1));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_sodium_init("fuzz_address");
    if (fuzz_seed_dir() != NULL) {
        write_seeds(fuzz_seed_dir());
        exit(0);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = {data, size};
    uint8_t mode = fuzz_u8(&in);

    if (in.n >= sizeof text)
        return -1;
    /* The parsers take C strings: the text ends at the first NUL. */
    memcpy(text, in.p, in.n);
    text[in.n] = '\0';
    switch (mode & 0x7F) {
    case 0: addr(strlen(text)); break;
    case 1: hostport(mode >> 7); break;
    case 2: b64(in.n); break;
    default: return -1;
    }
    return 0;
}
