/* err.c - eb_strerror: one place that turns any status into words. */
#include <string.h>

#include "eventbus/err.h"

const char *eb_strerror(int err)
{
    switch (err) {
    case EB_OK:        return "success";
    case EB_ENOMEM:    return "out of memory";
    case EB_EINVAL:    return "invalid argument";
    case EB_EIO:       return "I/O error";
    case EB_ECORRUPT:  return "data corrupt";
    case EB_ENOTFOUND: return "not found";
    case EB_EEXIST:    return "already exists";
    case EB_ETOOBIG:   return "too large";
    case EB_EDEPTH:    return "nested too deeply";
    case EB_ESYNTAX:   return "syntax error";
    case EB_ESCHEMA:   return "schema violation";
    case EB_ECONFLICT: return "conflict";
    case EB_ECLOSED:   return "closed";
    case EB_ETIMEDOUT: return "timed out";
    case EB_ECONNECT:  return "cannot connect";
    case EB_EPROTO:    return "protocol error";
    case EB_ESERVER:   return "server error";
    case EB_EFULL:     return "full";
    case EB_EUNSUPP:   return "not supported";
    case EB_EGONE:     return "gone";
    case EB_ERANGE:    return "out of range";
    case EB_ECANCELED: return "canceled";
    case EB_ENOSPC:    return "storage full";
    case EB_EAUTH:     return "not authenticated (missing, unknown or expired token)";
    case EB_EDENIED:   return "permission denied (the token lacks a scope)";
    default:
        if (err < 0 && err > -4096)
            return strerror(-err);
        return "unknown error";
    }
}
