"""fetch against a local HTTP server on 127.0.0.1 (ephemeral port): no traffic to any other address."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from logsieve.cli import app
from logsieve.data.fetch import FetchError, fetch

FILES = {
    "README.md": b"tiny HDFS stand-in\n",
    "preprocessed/Event_traces.csv": b'BlockId,Label,Features\nblk_1,Success,"[E5,E22]"\n',
    "blob.bin": os.urandom(300_000),  # incompressible, so the archive spans many read chunks
}


def make_zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def make_tar_gz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Handler(BaseHTTPRequestHandler):
    """Serves ``server.payload``; honours Range unless ``server.ignore_range``; ``server.drop_at`` cuts the
    connection after that many bytes of the body."""

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        srv = self.server
        srv.ranges.append(self.headers.get("Range"))
        if self.path != "/HDFS_v1.zip":
            self.send_error(404)
            return
        data, start = srv.payload, 0
        rng = self.headers.get("Range")
        if rng and not srv.ignore_range:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if srv.drop_at is not None:
            self.wfile.write(body[: srv.drop_at])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        srv.sent += len(body)  # counted before writing: the client may finish before this thread resumes
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy from the environment must not see (or reroute) the local test traffic."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.payload, srv.drop_at, srv.ignore_range, srv.ranges, srv.sent = make_zip(FILES), None, False, [], 0
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}/HDFS_v1.zip"
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_unpacked(folder: Path) -> None:
    for name, data in FILES.items():
        assert (folder / name).read_bytes() == data


def leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir() if p.name.startswith("."))


def test_fetch_verifies_and_unpacks(server, tmp_path):
    res = fetch("hdfs-v1", tmp_path, url=server.url, sha256=sha(server.payload), verbose=False)
    assert res.verified and res.sha256 == sha(server.payload)
    assert res.archive == tmp_path / "HDFS_v1.zip" and res.archive.read_bytes() == server.payload
    assert res.folder == tmp_path / "hdfs-v1"
    assert_unpacked(res.folder)
    assert not (tmp_path / "HDFS_v1.zip.part").exists() and leftovers(tmp_path) == []
    assert server.ranges == [None] and res.resumed_from == 0 and res.downloaded == len(server.payload)


def test_dropped_connection_then_resume(server, tmp_path):
    cut = 120_000
    server.drop_at = cut
    with pytest.raises(FetchError, match="interrupted after 120,000 of .* run the same command again to resume"):
        fetch("hdfs-v1", tmp_path, url=server.url, sha256=sha(server.payload), verbose=False)
    part = tmp_path / "HDFS_v1.zip.part"
    assert part.stat().st_size == cut and not (tmp_path / "hdfs-v1").exists()

    server.drop_at = None
    res = fetch("hdfs-v1", tmp_path, url=server.url, sha256=sha(server.payload), verbose=False)
    assert server.ranges[-1] == f"bytes={cut}-"  # asked only for the rest ...
    assert server.sent == len(server.payload) - cut  # ... and got only the rest
    assert res.resumed_from == cut and res.downloaded == len(server.payload) - cut
    assert res.verified and not part.exists()
    assert_unpacked(res.folder)


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    (tmp_path / "HDFS_v1.zip.part").write_bytes(b"stale bytes from another file")
    server.ignore_range = True
    res = fetch("hdfs-v1", tmp_path, url=server.url, sha256=sha(server.payload), verbose=False)
    assert res.resumed_from == 0 and res.archive.read_bytes() == server.payload
    assert_unpacked(res.folder)


def test_complete_part_is_not_downloaded_again(server, tmp_path):
    (tmp_path / "HDFS_v1.zip.part").write_bytes(server.payload)  # crashed after the last byte, before rename
    res = fetch("hdfs-v1", tmp_path, url=server.url, sha256=sha(server.payload), verbose=False)
    assert server.sent == 0 and res.downloaded == 0 and res.verified
    assert_unpacked(res.folder)


def test_stale_part_longer_than_the_file_starts_over(server, tmp_path):
    (tmp_path / "HDFS_v1.zip.part").write_bytes(b"x" * (len(server.payload) + 5))
    res = fetch("hdfs-v1", tmp_path, url=server.url, sha256=sha(server.payload), verbose=False)
    assert server.ranges == [f"bytes={len(server.payload) + 5}-", None] and res.resumed_from == 0
    assert_unpacked(res.folder)


def test_corrupted_file_is_deleted_and_never_unpacked(server, tmp_path):
    good = server.payload
    server.payload = good[:-10] + b"X" * 10  # same size, wrong bytes
    with pytest.raises(FetchError, match=f"sha256 mismatch \\(expected {sha(good)}, got {sha(server.payload)}\\)"):
        fetch("hdfs-v1", tmp_path, url=server.url, sha256=sha(good), verbose=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no archive, no .part, no folder, no temp dir


def test_second_run_reuses_the_verified_archive(server, tmp_path):
    fetch("hdfs-v1", tmp_path, url=server.url, sha256=sha(server.payload), verbose=False)
    server.payload = b"the server changed"  # must not be asked again
    res = fetch("hdfs-v1", tmp_path, url=server.url, verbose=False)
    assert len(server.ranges) == 1 and res.downloaded == 0
    assert_unpacked(res.folder)


def test_without_checksum_reports_hash_unverified(server, tmp_path):
    res = fetch("hdfs-v1", tmp_path, url=server.url, verbose=False)
    assert not res.verified and res.sha256 == sha(server.payload)


def test_tar_gz_archive(server, tmp_path):
    server.payload = make_tar_gz(FILES)
    res = fetch("hdfs-v1", tmp_path, url=server.url, sha256=sha(server.payload), verbose=False)
    assert_unpacked(res.folder)


def test_unpack_replaces_previous_folder_atomically(server, tmp_path):
    (tmp_path / "hdfs-v1").mkdir()
    (tmp_path / "hdfs-v1" / "old.txt").write_text("from an older run")
    res = fetch("hdfs-v1", tmp_path, url=server.url, sha256=sha(server.payload), verbose=False)
    assert not (res.folder / "old.txt").exists() and leftovers(tmp_path) == []


def test_unsafe_archive_path_is_refused(server, tmp_path):
    server.payload = make_zip({"../escape.txt": b"nope"})
    with pytest.raises(FetchError, match="unsafe path"):
        fetch("hdfs-v1", tmp_path / "d", url=server.url, verbose=False)
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "d" / "hdfs-v1").exists()
    assert leftovers(tmp_path / "d") == []


def test_not_an_archive(server, tmp_path):
    server.payload = b"<html>login page</html>"
    with pytest.raises(FetchError, match="not a zip or tar.gz archive"):
        fetch("hdfs-v1", tmp_path, url=server.url, verbose=False)
    assert not (tmp_path / "hdfs-v1").exists()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_url_is_one_clear_line(tmp_path):
    port = closed_port()
    with pytest.raises(FetchError, match=f"cannot reach 127.0.0.1:{port} .*offline") as info:
        fetch("hdfs-v1", tmp_path, url=f"http://127.0.0.1:{port}/HDFS_v1.zip", timeout=5, verbose=False)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "HDFS_v1.zip.part").exists()
    with pytest.raises(FetchError, match="cannot reach"):
        fetch("hdfs-v1", tmp_path / "new", url=f"http://127.0.0.1:{port}/HDFS_v1.zip", timeout=5, verbose=False)
    assert not (tmp_path / "new").exists()  # no empty folder left behind


def test_http_error_and_bad_arguments(server, tmp_path):
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch("hdfs-v1", tmp_path, url=server.url.replace("HDFS_v1", "nothing"), verbose=False)
    with pytest.raises(FetchError, match="unknown dataset 'hdfs-v9'; known: hdfs-v1"):
        fetch("hdfs-v9", tmp_path, verbose=False)
    with pytest.raises(FetchError, match="64 hex digits"):
        fetch("hdfs-v1", tmp_path, url=server.url, sha256="abc", verbose=False)
    with pytest.raises(FetchError, match="http"):
        fetch("hdfs-v1", tmp_path, url="ftp://127.0.0.1/x.zip", verbose=False)


# --- CLI ------------------------------------------------------------------------------------------


def test_cli_fetch_without_sha256_says_not_verified(server, tmp_path):
    result = CliRunner().invoke(app, ["fetch", "hdfs-v1", "--dest", str(tmp_path), "--url", server.url])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert sha(server.payload) in text
    assert "NOT verified: no expected sha256 for HDFS_v1.zip (logsieve ships none for hdfs-v1)" in text
    assert "checksum verified" not in text
    assert_unpacked(tmp_path / "hdfs-v1")


def test_cli_fetch_with_sha256_says_verified(server, tmp_path):
    args = ["fetch", "hdfs-v1", "--dest", str(tmp_path), "--url", server.url, "--sha256", sha(server.payload)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "checksum verified" in result.output and "NOT verified" not in result.output


def test_cli_fetch_help_says_hdfs_v1_is_not_verified_without_sha256():
    result = CliRunner().invoke(app, ["fetch", "--help"], terminal_width=200)
    text = " ".join(result.output.replace("│", " ").split())
    assert "without --sha256 the download is NOT verified" in text


def test_cli_fetch_dest_that_cannot_be_created_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    result = CliRunner().invoke(app, ["fetch", "hdfs-v1", "--dest", str(tmp_path / "file" / "sub")])
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "cannot create --dest folder" in lines[0]


def test_cli_fetch_unreachable_is_one_error_line(tmp_path):
    port = closed_port()
    url = f"http://127.0.0.1:{port}/HDFS_v1.zip"
    result = CliRunner().invoke(app, ["fetch", "hdfs-v1", "--dest", str(tmp_path), "--url", url])
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit)  # a clean exit, not a crash
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "cannot reach" in lines[0] and "Traceback" not in result.output
