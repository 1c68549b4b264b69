/* error: error strings and the version, for the public API. */
#include "wschat.h"

#define STR2(x) #x
#define STR(x) STR2(x)

const char *wschat_strerror(int err) {
  switch (err) {
  case WSCHAT_OK: return "success";
  case WSCHAT_EINVAL: return "invalid argument";
  case WSCHAT_ENAME: return "invalid name (1-32 of A-Z a-z 0-9 - _)";
  case WSCHAT_EROOM: return "invalid room name (1-64 of A-Z a-z 0-9 - _ .)";
  case WSCHAT_ETOOBIG: return "message too big";
  case WSCHAT_ENAMETAKEN: return "name already taken";
  case WSCHAT_ENOTFOUND: return "no such client or room";
  case WSCHAT_ECLOSED: return "closing or closed";
  case WSCHAT_ESTATE: return "not allowed in this state";
  case WSCHAT_ESAMEROOM: return "already in that room";
  case WSCHAT_ENOTOPEN: return "not open yet";
  case WSCHAT_ETOOMANY: return "over a limit";
  case WSCHAT_EEXIST: return "already exists";
  case WSCHAT_ERESERVED: return "the name is reserved";
  case WSCHAT_ENOTMEMBER: return "not in that room";
  case WSCHAT_ENOMEM: return "out of memory";
  case WSCHAT_EIO: return "I/O error";
  case WSCHAT_EADDR: return "cannot use that address";
  case WSCHAT_ENOHISTORY: return "the server keeps no history";
  case WSCHAT_ETLS: return "unusable TLS certificate, key or CA file";
  default: return "unknown error";
  }
}

unsigned wschat_version(void) { return WSCHAT_VERSION_NUM; }

const char *wschat_version_string(void) {
  return STR(WSCHAT_VERSION_MAJOR) "." STR(WSCHAT_VERSION_MINOR) "." STR(
      WSCHAT_VERSION_PATCH);
}
