#include "err.h"

const char *alcove_strerror(int err)
{
    switch (err) {
    case ALCOVE_OK:
        return "success";
#define ALCOVE_ERR_STR(name, msg) \
    case ALCOVE_##name:           \
        return msg;
        ALCOVE_ERRNO_MAP(ALCOVE_ERR_STR)
#undef ALCOVE_ERR_STR
    default:
        return "unknown error";
    }
}
