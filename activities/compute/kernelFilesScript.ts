import { kernelWorkDir } from '../../domain/compute/files';

/**
 * The kernel's side of list, upload and download (kernelFiles.ts): one Python program, passed as
 * an argument (`python3 -I -S -c <source> <op> <args…>`) to a `docker exec` as `work`, so a kernel
 * needs no file for it and its files are owned by `work`. Only the standard library.
 *
 * Every path is confined to the work directory as the kernel sees it: resolved with realpath
 * (symlinks followed inside the container), a path that is not there is PathNotFound, one that
 * resolves outside is PathOutsideWorkDir. A refusal is one JSON line on stderr
 * (`{"error", "message", "details"}`) and exit code 2; anything else that goes wrong is a
 * traceback and exit code 1.
 *
 * - `list <path> <show_hidden 0|1> <max_entries> <max_bytes>`: one JSON object on stdout
 *   (path, entries sorted by name, truncated).
 * - `upload <dir> <manifest JSON> <max_files> <max_file_bytes>`: the manifest lists the files
 *   (`[{name, size}]`, names relative to dir); stdin is a tar stream whose members are named
 *   `0`, `1`, … in the manifest's order. Everything is checked before anything is written; each
 *   file is written to a hidden temporary name beside its destination and renamed into place once
 *   every member has arrived whole; on any failure the temporaries and the directories made go.
 * - `download <auto|tar> <max_bytes> <path…>`: one JSON header line on stdout
 *   (`{"kind": "file"|"tar", "name", "size"}`), then the bytes: one regular file as it is (auto),
 *   else a tar of every path (directories recursively, symlinks stored as links, never followed).
 *   Larger than max_bytes: DownloadTooLarge, before anything is written.
 */
export const kernelFilesSource = String.raw`
import json, os, stat, sys, tarfile, time

WORK = os.path.realpath("${kernelWorkDir}")
# Large reads and writes: under gVisor every system call is costly, and tarfile's default is 10 KiB.
CHUNK = 1 << 20


class Refused(Exception):
    def __init__(self, code, message, **details):
        Exception.__init__(self, message)
        self.code, self.message, self.details = code, message, details


def text(name):
    """A file name as text: bytes that are not UTF-8 become U+FFFD rather than failing the answer."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def inside(real):
    return real == WORK or real.startswith(WORK + os.sep)


def absolute(path):
    return path if os.path.isabs(path) else os.path.join(WORK, path)


def resolve(path):
    """An existing path, resolved and confined to the work directory."""
    full = absolute(path)
    if not os.path.exists(full):
        raise Refused("PathNotFound", "no such file or directory: %s" % path, path=path)
    real = os.path.realpath(full)
    if not inside(real):
        raise Refused("PathOutsideWorkDir", "%s is outside %s (it resolves to %s)" % (path, WORK, text(real)), path=path, work_dir=WORK)
    return real


def iso(seconds):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + ".%03dZ" % int((seconds % 1) * 1000)


def entry_of(directory, name):
    full = os.path.join(directory, name)
    st = os.lstat(full)
    mode = st.st_mode
    kind = "file" if stat.S_ISREG(mode) else "dir" if stat.S_ISDIR(mode) else "symlink" if stat.S_ISLNK(mode) else "other"
    entry = {"name": text(name), "type": kind, "size": st.st_size, "mode": stat.filemode(mode), "mode_octal": "%04o" % stat.S_IMODE(mode), "mtime": iso(st.st_mtime)}
    if kind == "symlink":
        entry["target"] = text(os.readlink(full))
    return entry


def list_dir(path, show_hidden, max_entries, max_bytes):
    real = resolve(path)
    if not os.path.isdir(real):
        raise Refused("ValidationFailed", "%s is not a directory" % path, errors=[{"field": "query.path", "message": "not a directory"}])
    names = sorted(os.listdir(real))
    if not show_hidden:
        names = [name for name in names if not name.startswith(".")]
    entries, size, truncated = [], 0, False
    for name in names:
        if len(entries) >= max_entries:
            truncated = True
            break
        try:
            entry = entry_of(real, name)
        except FileNotFoundError:
            continue  # removed while listing
        size += len(json.dumps(entry)) + 2
        if size > max_bytes:
            truncated = True
            break
        entries.append(entry)
    sys.stdout.write(json.dumps({"path": text(real), "entries": entries, "truncated": truncated}))


def name_problem(name):
    if not name or "\0" in name or name.startswith("/"):
        return "a relative path without NUL"
    if any(segment in ("", ".", "..") for segment in name.split("/")):
        return "no empty, . or .. segments"
    return None


def plan_directory(base, segments, field):
    """Where a file's directory is: the existing part resolved and confined, the rest to be made."""
    current, missing = base, []
    for segment in segments:
        nxt = os.path.join(current, segment)
        if missing or not os.path.lexists(nxt):
            missing.append(segment)
            current = nxt
            continue
        real = os.path.realpath(nxt)
        if not inside(real):
            raise Refused("PathOutsideWorkDir", "%s leads outside %s (to %s)" % (text(nxt), WORK, text(real)), path=text(nxt), work_dir=WORK)
        if not os.path.isdir(real):
            raise Refused("ValidationFailed", "%s is not a directory" % text(nxt), errors=[{"field": field, "message": "a file of that name is in the way"}])
        current = real
    return current, len(missing)


def upload(target, manifest_json, max_files, max_file_bytes):
    manifest = json.loads(manifest_json)
    if len(manifest) > max_files:
        raise Refused("TooManyFiles", "%d files: at most %d in one upload" % (len(manifest), max_files), count=len(manifest), max_files=max_files)
    # The target directory: its existing part must resolve inside; the rest is made.
    head, rest = absolute(target), []
    while not os.path.lexists(head):
        head, tail = os.path.split(head)
        rest.insert(0, tail)
    rest = [segment for segment in rest if segment not in ("", ".")]
    if ".." in rest:
        raise Refused("PathOutsideWorkDir", "%s leads outside %s" % (target, WORK), path=target, work_dir=WORK)
    base = os.path.realpath(head)
    if not inside(base):
        raise Refused("PathOutsideWorkDir", "%s is outside %s" % (target, WORK), path=target, work_dir=WORK)
    if not os.path.isdir(base):
        raise Refused("ValidationFailed", "%s is not a directory" % target, errors=[{"field": "body.path", "message": "not a directory"}])
    plans, seen = [], set()
    for i, item in enumerate(manifest):
        name, size, field = item["name"], item["size"], "body.files.%d.name" % i
        problem = name_problem(name)
        if problem:
            raise Refused("ValidationFailed", "file name %r: %s" % (name, problem), errors=[{"field": field, "message": problem}])
        if size > max_file_bytes:
            raise Refused("FileTooLarge", "%s is %d bytes: at most %d" % (name, size, max_file_bytes), name=name, size=size, max_bytes=max_file_bytes)
        segments = rest + name.split("/")
        directory, missing = plan_directory(base, segments[:-1], field)
        destination = os.path.join(directory, segments[-1])
        if destination in seen:
            raise Refused("ValidationFailed", "%s is given twice" % name, errors=[{"field": field, "message": "given twice"}])
        seen.add(destination)
        if os.path.isdir(destination) and not os.path.islink(destination):
            raise Refused("ValidationFailed", "%s is a directory" % name, errors=[{"field": field, "message": "a directory of that name exists"}])
        plans.append((directory, missing, destination, size))
    # A file where another one needs a directory ("a" and "a/b"): refused before anything is written.
    for directory, missing, _, _ in plans:
        for _ in range(missing):
            if directory in seen:
                raise Refused("ValidationFailed", "%s is both a file and a directory of this upload" % text(directory), errors=[{"field": "body.files", "message": "a file and a directory of the same name"}])
            directory = os.path.dirname(directory)

    made, temporaries = [], []
    try:
        for directory, missing, _, _ in plans:
            # The directories this upload makes, outermost first, so a failure removes them again.
            chain = []
            path = directory
            for _ in range(missing):
                chain.insert(0, path)
                path = os.path.dirname(path)
            for path in chain:
                if not os.path.isdir(path):
                    os.mkdir(path)
                    made.append(path)
                    # Set, not left to the umask: uploads read the same whatever process runs the script.
                    os.chmod(path, 0o755)
        stream = tarfile.open(fileobj=sys.stdin.buffer, mode="r|", bufsize=CHUNK)
        count = 0
        for member in stream:
            if count >= len(plans) or member.name != str(count) or not member.isreg() or member.size != plans[count][3]:
                raise Refused("ValidationFailed", "the upload stream does not match its manifest at member %d" % count)
            directory, _, destination, size = plans[count]
            temporary = os.path.join(directory, ".sf-upload-%d-%d" % (os.getpid(), count))
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            temporaries.append(temporary)
            source = stream.extractfile(member)
            written = 0
            with os.fdopen(fd, "wb") as out:
                while True:
                    chunk = source.read(CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    written += len(chunk)
            if written != size:
                raise Refused("ValidationFailed", "member %d ended after %d of %d bytes" % (count, written, size))
            os.chmod(temporary, 0o644)
            count += 1
        if count != len(plans):
            raise Refused("ValidationFailed", "the upload stream ended after %d of %d files" % (count, len(plans)))
        for temporary, (_, _, destination, _) in zip(temporaries, plans):
            os.replace(temporary, destination)
        temporaries = []
    except BaseException:
        for temporary in temporaries:
            try:
                os.unlink(temporary)
            except OSError:
                pass
        for path in reversed(made):
            try:
                os.rmdir(path)
            except OSError:
                pass
        raise
    shown = os.path.join(base, *rest) if rest else base
    sys.stdout.write(json.dumps({"path": text(shown), "files": [{"name": item["name"], "size": item["size"]} for item in manifest]}))


def tar_size(real):
    """What a tar of the path will hold: headers and padded contents (pax headers aside), checked against the cap up front."""
    total = 0
    for path in [real] if not os.path.isdir(real) or os.path.islink(real) else walk(real):
        st = os.lstat(path)
        total += 512
        if stat.S_ISREG(st.st_mode):
            if not os.access(path, os.R_OK):
                raise Refused("ValidationFailed", "%s cannot be read by the kernel's user" % text(path), path=text(path))
            total += (st.st_size + 511) // 512 * 512
    return total


def walk(top):
    yield top
    for directory, dirs, files in os.walk(top):
        for name in dirs + files:
            yield os.path.join(directory, name)


def download(mode, max_bytes, paths):
    reals = [resolve(path) for path in paths]
    out = sys.stdout.buffer
    if mode == "auto" and len(reals) == 1 and os.path.isfile(reals[0]):
        real = reals[0]
        if not os.access(real, os.R_OK):
            raise Refused("ValidationFailed", "%s cannot be read by the kernel's user" % paths[0], path=paths[0])
        size = os.path.getsize(real)
        if size > max_bytes:
            raise Refused("DownloadTooLarge", "%s is %d bytes: at most %d in one download" % (paths[0], size, max_bytes), bytes=size, max_bytes=max_bytes)
        with open(real, "rb") as source:
            out.write((json.dumps({"kind": "file", "name": text(os.path.basename(real)), "size": size}) + "\n").encode())
            while True:
                chunk = source.read(CHUNK)
                if not chunk:
                    break
                out.write(chunk)
        return
    # Two zero blocks end the archive, and a streamed tar is padded to whole 10 KiB records.
    size = (sum(tar_size(real) for real in reals) + 1024 + tarfile.RECORDSIZE - 1) // tarfile.RECORDSIZE * tarfile.RECORDSIZE
    if size > max_bytes:
        raise Refused("DownloadTooLarge", "the archive would be about %d bytes: at most %d in one download" % (size, max_bytes), bytes=size, max_bytes=max_bytes)
    names = [os.path.relpath(real, WORK) if real != WORK else os.path.basename(WORK) for real in reals]
    name = (os.path.basename(reals[0]) or "files") + ".tar" if len(reals) == 1 else "files.tar"
    out.write((json.dumps({"kind": "tar", "name": text(name), "size": size}) + "\n").encode())
    archive = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, bufsize=CHUNK)
    # Files copied in large pieces too: tarfile's 16 KiB pieces, each appended to the stream's buffer, cost more than the copy.
    archive.copybufsize = CHUNK
    for real, arcname in zip(reals, names):
        archive.add(real, arcname=arcname, recursive=True)
    archive.close()


def main(argv):
    op = argv[0]
    if op == "list":
        list_dir(argv[1], argv[2] == "1", int(argv[3]), int(argv[4]))
    elif op == "upload":
        upload(argv[1], argv[2], int(argv[3]), int(argv[4]))
    elif op == "download":
        download(argv[1], int(argv[2]), argv[3:])
    else:
        raise Refused("ValidationFailed", "unknown operation %s" % op)
    sys.stdout.flush()


try:
    main(sys.argv[1:])
except Refused as refused:
    sys.stderr.write(json.dumps({"error": refused.code, "message": refused.message, "details": refused.details}) + "\n")
    sys.exit(2)
`;
