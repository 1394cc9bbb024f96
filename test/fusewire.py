"""A small pure-Python FUSE wire client: it plays the kernel's side of the
protocol over a connected SOCK_SEQPACKET socket (one request per send, one
reply per receive), so tests can send what no well-behaved kernel would.
Struct layouts and numbers come from include/fuse_kernel.h."""

import errno
import os
import socket
import struct

# Opcodes (enum fuse_opcode).
LOOKUP = 1
FORGET = 2
GETATTR = 3
SETATTR = 4
MKDIR = 9
OPEN = 14
READ = 15
WRITE = 16
RELEASE = 18
FSYNC = 20
GETXATTR = 22
LISTXATTR = 23
FLUSH = 25
INIT = 26
OPENDIR = 27
READDIR = 28
RELEASEDIR = 29
FSYNCDIR = 30
GETLK = 31
SETLK = 32
SETLKW = 33
CREATE = 35
INTERRUPT = 36
DESTROY = 38
FALLOCATE = 43
READDIRPLUS = 44
LSEEK = 46
COPY_FILE_RANGE = 47
SETUPMAPPING = 48
REMOVEMAPPING = 49
STATX = 52

# INIT flags (fuse_init_in/out.flags; bits 32.. go in flags2).
FUSE_ASYNC_READ = 1 << 0
FUSE_POSIX_LOCKS = 1 << 1
FUSE_FLOCK_LOCKS = 1 << 10
FUSE_BIG_WRITES = 1 << 5
FUSE_MAX_PAGES = 1 << 22
FUSE_MAP_ALIGNMENT = 1 << 26
FUSE_INIT_EXT = 1 << 30

FUSE_GETATTR_FH = 1 << 0
FATTR_MODE = 1 << 0
FATTR_SIZE = 1 << 3
FATTR_FH = 1 << 6
FUSE_LK_FLOCK = 1 << 0
SETUPMAPPING_FLAG_WRITE = 1 << 0
SETUPMAPPING_FLAG_READ = 1 << 1
NO_FH = (1 << 64) - 1      # SETUPMAPPING's "no handle" (what Linux sends)
ROOT_ID = 1

IN_HEADER = struct.Struct("<IIQQIIIHH")          # fuse_in_header, 40 bytes
OUT_HEADER = struct.Struct("<IiQ")               # fuse_out_header, 16 bytes
ATTR = struct.Struct("<QQQQQQIIIIIIIIII")        # fuse_attr, 88 bytes
ENTRY_OUT = struct.Struct("<QQQQII" + ATTR.format[1:])   # fuse_entry_out, 128
ATTR_OUT = struct.Struct("<QII" + ATTR.format[1:])       # fuse_attr_out, 104
OPEN_OUT = struct.Struct("<QIi")                 # fuse_open_out, 16
INIT_IN = struct.Struct("<IIIII44x")             # fuse_init_in, 64
INIT_OUT = struct.Struct("<IIIIHHIIHHIIH22x")    # fuse_init_out, 64
READ_IN = struct.Struct("<QQIIQII")              # fuse_read_in (and write_in), 40
RELEASE_IN = struct.Struct("<QIIQ")              # fuse_release_in, 24
FLUSH_IN = struct.Struct("<QIIQ")                # fuse_flush_in, 24
GETATTR_IN = struct.Struct("<IIQ")               # fuse_getattr_in, 16
FSYNC_IN = struct.Struct("<QII")                 # fuse_fsync_in, 16
OPEN_IN = struct.Struct("<II")                   # fuse_open_in, 8
CREATE_IN = struct.Struct("<IIII")               # fuse_create_in, 16
MKDIR_IN = struct.Struct("<II")                  # fuse_mkdir_in, 8
SETUPMAPPING_IN = struct.Struct("<QQQQQ")        # fuse_setupmapping_in, 40
REMOVEMAPPING_ONE = struct.Struct("<QQ")         # fuse_removemapping_one, 16
SETATTR_IN = struct.Struct("<IIQQQQQQIIIIIIII")  # fuse_setattr_in, 88
LK_IN = struct.Struct("<QQQQIIII")               # fuse_lk_in, 48
FALLOCATE_IN = struct.Struct("<QQQII")           # fuse_fallocate_in, 32
LSEEK_IN = struct.Struct("<QQII")                # fuse_lseek_in, 24
COPY_FILE_RANGE_IN = struct.Struct("<QQQQQQQ")   # fuse_copy_file_range_in, 56
STATX_IN = struct.Struct("<IIQII")               # fuse_statx_in, 24
INTERRUPT_IN = struct.Struct("<Q")               # fuse_interrupt_in, 8
GETXATTR_IN = struct.Struct("<II")               # fuse_getxattr_in, 8
DIRENT = struct.Struct("<QQII")                  # fuse_dirent (before the name), 24

assert IN_HEADER.size == 40 and ATTR.size == 88 and ENTRY_OUT.size == 128
assert INIT_IN.size == 64 and INIT_OUT.size == 64 and READ_IN.size == 40
assert SETATTR_IN.size == 88 and LK_IN.size == 48 and COPY_FILE_RANGE_IN.size == 56


class FuseError(OSError):
    """The server answered a request with an errno."""


def _name(name):
    return (name.encode() if isinstance(name, str) else name) + b"\0"


def attr_dict(values):
    keys = ("ino", "size", "blocks", "atime", "mtime", "ctime", "atimensec",
            "mtimensec", "ctimensec", "mode", "nlink", "uid", "gid", "rdev",
            "blksize", "flags")
    return dict(zip(keys, values))


class FuseConn:
    """One connection to a FUSE server. A request waits for its reply
    (timeout seconds at most), so a server that stops answering fails the
    caller instead of hanging it; several can be in flight with reply=False
    and recv_replies(). Every message is one socket message: the server
    sizes its end for max_write; a WRITE larger than about 200 KiB needs
    this end's send buffer raised too (SO_SNDBUFFORCE, as root)."""

    def __init__(self, sock, timeout=10.0):
        self.sock = sock
        self.sock.settimeout(timeout)
        self.unique = 0
        self.init_out = None

    def close(self):
        self.sock.close()

    # ---- framing ------------------------------------------------------

    def send_raw(self, data):
        self.sock.send(data)

    def recv_reply(self, unique, data=None):
        """The reply to unique (received now, or data if given): (errno,
        payload). Raises on a framing error, which a correct server never
        makes."""
        if data is None:
            data = self.sock.recv(1 << 22)
        if not data:
            raise ConnectionError("the server closed the connection")
        if len(data) < OUT_HEADER.size:
            raise ValueError(f"reply of {len(data)} bytes is shorter than a header")
        length, error, got_unique = OUT_HEADER.unpack_from(data)
        if length != len(data):
            raise ValueError(f"reply header says {length} bytes, got {len(data)}")
        if got_unique != unique:
            raise ValueError(f"reply for request {got_unique}, expected {unique}")
        if error > 0 or (error < 0 and len(data) != OUT_HEADER.size):
            raise ValueError(f"malformed error reply: error {error}, {len(data)} bytes")
        return -error, data[OUT_HEADER.size:]

    def recv_replies(self, uniques):
        """Replies to several requests sent with reply=False, in whatever
        order the server sends them: {unique: (errno, payload)}."""
        want, got = set(uniques), {}
        while want:
            data = self.sock.recv(1 << 22)
            if not data:
                raise ConnectionError("the server closed the connection")
            unique = OUT_HEADER.unpack_from(data)[2]
            if unique not in want:
                raise ValueError(f"unexpected reply for request {unique}")
            want.discard(unique)
            got[unique] = self.recv_reply(unique, data)
        return got

    def request(self, opcode, nodeid, arg=b"", reply=True, length=None, uid=None,
                gid=None, pid=0):
        """Send one request and return its reply (errno, payload); with
        reply=False, return its unique at once (see recv_replies). length
        overrides the header's length field (hostile framing); uid and gid
        the caller's ids (default: ours). The header's pid is 0 unless
        given, so the server finds no supplementary groups."""
        self.unique += 1
        total = IN_HEADER.size + len(arg)
        header = IN_HEADER.pack(total if length is None else length, opcode,
                                self.unique, nodeid,
                                os.geteuid() if uid is None else uid,
                                os.getegid() if gid is None else gid, pid, 0, 0)
        self.send_raw(header + arg)
        if not reply:
            return self.unique
        return self.recv_reply(self.unique)

    def call(self, opcode, nodeid, arg=b""):
        """Like request(), but raise FuseError for an error reply."""
        err, payload = self.request(opcode, nodeid, arg)
        if err:
            raise FuseError(err, f"{os.strerror(err)} (opcode {opcode}, node {nodeid})")
        return payload

    # ---- requests -----------------------------------------------------

    def init(self, flags=FUSE_INIT_EXT | FUSE_MAP_ALIGNMENT | FUSE_MAX_PAGES |
             FUSE_BIG_WRITES | FUSE_ASYNC_READ | FUSE_POSIX_LOCKS | FUSE_FLOCK_LOCKS,
             flags2=0, minor=45):
        payload = self.call(INIT, 0, INIT_IN.pack(7, minor, 1 << 20, flags, flags2))
        fields = INIT_OUT.unpack(payload[:INIT_OUT.size].ljust(INIT_OUT.size, b"\0"))
        keys = ("major", "minor", "max_readahead", "flags", "max_background",
                "congestion_threshold", "max_write", "time_gran", "max_pages",
                "map_alignment", "flags2", "max_stack_depth", "request_timeout")
        self.init_out = dict(zip(keys, fields))
        return self.init_out

    def lookup(self, parent, name):
        """The entry: dict with nodeid, generation and attr."""
        return self._entry(self.call(LOOKUP, parent, _name(name)))

    @staticmethod
    def _entry(payload):
        values = ENTRY_OUT.unpack(payload[:ENTRY_OUT.size])
        return {"nodeid": values[0], "generation": values[1], "attr": attr_dict(values[6:])}

    def forget(self, nodeid, nlookup=1):
        """FORGET has no reply."""
        self.request(FORGET, nodeid, struct.pack("<Q", nlookup), reply=False)

    def getattr_request(self, nodeid, fh=None):
        flags = 0 if fh is None else FUSE_GETATTR_FH
        return self.request(GETATTR, nodeid, GETATTR_IN.pack(flags, 0, fh or 0))

    def getattr(self, nodeid, fh=None):
        err, payload = self.getattr_request(nodeid, fh)
        if err:
            raise FuseError(err, os.strerror(err))
        return attr_dict(ATTR_OUT.unpack(payload)[3:])

    def open(self, nodeid, flags=os.O_RDONLY, opcode=OPEN):
        payload = self.call(opcode, nodeid, OPEN_IN.pack(flags, 0))
        return OPEN_OUT.unpack(payload)[0]

    def opendir(self, nodeid):
        return self.open(nodeid, os.O_RDONLY | os.O_DIRECTORY, opcode=OPENDIR)

    def create(self, parent, name, flags=os.O_RDWR, mode=0o644):
        """(entry, fh) of a new file."""
        payload = self.call(CREATE, parent, CREATE_IN.pack(flags | os.O_CREAT, mode, 0, 0)
                            + _name(name))
        return self._entry(payload), OPEN_OUT.unpack_from(payload, ENTRY_OUT.size)[0]

    def mkdir(self, parent, name, mode=0o755):
        return self._entry(self.call(MKDIR, parent, MKDIR_IN.pack(mode, 0) + _name(name)))

    def read_request(self, nodeid, fh, offset, size, opcode=READ, reply=True):
        return self.request(opcode, nodeid, READ_IN.pack(fh, offset, size, 0, 0, 0, 0),
                            reply=reply)

    def read(self, nodeid, fh, offset, size):
        err, payload = self.read_request(nodeid, fh, offset, size)
        if err:
            raise FuseError(err, os.strerror(err))
        return payload

    def write_request(self, nodeid, fh, offset, data):
        return self.request(WRITE, nodeid, READ_IN.pack(fh, offset, len(data), 0, 0, 0, 0)
                            + data)

    def write(self, nodeid, fh, offset, data):
        err, payload = self.write_request(nodeid, fh, offset, data)
        if err:
            raise FuseError(err, os.strerror(err))
        return struct.unpack_from("<I", payload)[0]

    def release_request(self, nodeid, fh, opcode=RELEASE, reply=True):
        return self.request(opcode, nodeid, RELEASE_IN.pack(fh, 0, 0, 0), reply=reply)

    def release(self, nodeid, fh, opcode=RELEASE):
        err, _ = self.release_request(nodeid, fh, opcode)
        if err:
            raise FuseError(err, os.strerror(err))

    def flush_request(self, nodeid, fh):
        return self.request(FLUSH, nodeid, FLUSH_IN.pack(fh, 0, 0, 0))

    def fsync_request(self, nodeid, fh, opcode=FSYNC):
        return self.request(opcode, nodeid, FSYNC_IN.pack(fh, 0, 0))

    def setattr_request(self, nodeid, valid, fh=0, size=0, mode=0):
        return self.request(SETATTR, nodeid, SETATTR_IN.pack(valid, 0, fh, size, 0, 0, 0, 0,
                                                              0, 0, 0, mode, 0, 0, 0, 0))

    def statx_request(self, nodeid, fh=None, mask=0xFFF):
        flags = 0 if fh is None else FUSE_GETATTR_FH
        return self.request(STATX, nodeid, STATX_IN.pack(flags, 0, fh or 0, 0, mask))

    def lk_request(self, opcode, nodeid, fh, lock_type, start=0, end=99, lk_flags=0):
        """GETLK, SETLK or SETLKW; lk_flags FUSE_LK_FLOCK for flock(2)."""
        return self.request(opcode, nodeid,
                            LK_IN.pack(fh, 1, start, end, lock_type, 0, lk_flags, 0))

    def fallocate_request(self, nodeid, fh, offset, length, mode=0):
        return self.request(FALLOCATE, nodeid, FALLOCATE_IN.pack(fh, offset, length, mode, 0))

    def lseek_request(self, nodeid, fh, offset, whence):
        return self.request(LSEEK, nodeid, LSEEK_IN.pack(fh, offset, whence, 0))

    def copy_file_range_request(self, nodeid_in, fh_in, off_in, nodeid_out, fh_out,
                                off_out, length):
        return self.request(COPY_FILE_RANGE, nodeid_in,
                            COPY_FILE_RANGE_IN.pack(fh_in, off_in, nodeid_out, fh_out,
                                                    off_out, length, 0))

    def setupmapping_request(self, nodeid, fh, foffset, length, flags, moffset):
        return self.request(SETUPMAPPING, nodeid,
                            SETUPMAPPING_IN.pack(fh, foffset, length, flags, moffset))

    def removemapping_request(self, ranges, count=None, extra=b"", nodeid=ROOT_ID):
        """REMOVEMAPPING of (moffset, len) ranges; count and extra bytes
        override the honest count and length (hostile requests)."""
        arg = struct.pack("<I", len(ranges) if count is None else count)
        arg += b"".join(REMOVEMAPPING_ONE.pack(m, n) for m, n in ranges) + extra
        return self.request(REMOVEMAPPING, nodeid, arg)

    def interrupt(self, target):
        """FUSE_INTERRUPT of request target: no reply unless the server
        does not know target (EAGAIN), so the caller collects that itself."""
        return self.request(INTERRUPT, 0, INTERRUPT_IN.pack(target), reply=False)

    def destroy(self):
        return self.request(DESTROY, 0)


def parse_dirents(payload, plus):
    """The entries of a READDIR (plus False) or READDIRPLUS reply, in order:
    dicts with name, ino, off, type, and for READDIRPLUS the entry's
    nodeid and attr too."""
    out, i = [], 0
    while i < len(payload):
        entry = {}
        if plus:
            entry.update(FuseConn._entry(payload[i:i + ENTRY_OUT.size]))
            i += ENTRY_OUT.size
        ino, off, namelen, typ = DIRENT.unpack_from(payload, i)
        entry.update(ino=ino, off=off, type=typ,
                     name=payload[i + DIRENT.size:i + DIRENT.size + namelen].decode())
        out.append(entry)
        i += (DIRENT.size + namelen + 7) & ~7
    return out


def errno_name(err):
    return errno.errorcode.get(err, str(err))


def socketpair():
    """The two ends of a connection: (ours, the server's)."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
