"""Where the MNIST files come from: downloads from local mirrors, bad input.

Every mirror here is a server on 127.0.0.1 (or a closed port there); the
command-line runs get a dead proxy, so no test reaches the internet.
"""

import hashlib
import http.server
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from common import input_data
from common.input_data import DataError
from helpers import REPO_ROOT
from helpers import assert_one_error_line
from helpers import closed_port_url
from helpers import run_module
from helpers import run_python_without_write_privilege

NAMES = sorted(input_data.SHA256)


def sha256(path):
  with open(path, "rb") as f:
    return hashlib.sha256(f.read()).hexdigest()


def assert_holds_the_verified_files(directory):
  assert sorted(os.listdir(directory)) == NAMES  # no .part left over
  for name in NAMES:
    assert sha256(os.path.join(directory, name)) == input_data.SHA256[name]


def flip_byte(path, offset=100):
  with open(path, "r+b") as f:
    f.seek(offset)
    byte = f.read(1)
    f.seek(offset)
    f.write(bytes([byte[0] ^ 0xFF]))


def copy_files(data_dir, directory):
  os.makedirs(directory)
  for name in NAMES:
    shutil.copy(os.path.join(data_dir, name), directory)


# Proxies would intercept requests to the local mirrors.
@pytest.fixture(autouse=True)
def no_proxy_for_localhost(monkeypatch):
  for variable in ("no_proxy", "NO_PROXY"):
    monkeypatch.setenv(variable, "127.0.0.1,localhost")


@pytest.fixture
def mirror(data_dir):
  """Starts local mirrors of `data_dir`; `mirror(damage)` returns a base URL.

  `damage(name, body)` returns the bytes to send and the Content-Length to
  claim. Each server records the paths it was asked for in `.requests`.
  """
  servers = []

  def start(damage=lambda name, body: (body, len(body))):
    requests = []

    class Handler(http.server.BaseHTTPRequestHandler):

      def do_GET(self):  # pylint: disable=invalid-name
        name = self.path.lstrip("/")
        requests.append(name)
        if name not in input_data.SHA256:
          self.send_error(404)
          return
        with open(os.path.join(data_dir, name), "rb") as f:
          body, length = damage(name, f.read())
        self.send_response(200)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)

      def log_message(self, *args):  # keep the test's stderr clean
        pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    servers.append(server)
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    start.requests[url] = requests
    return url

  start.requests = {}
  yield start
  for server in servers:
    server.shutdown()
    server.server_close()


def socket_server(handle):
  """Serves 127.0.0.1 with `handle(connection)`, a thread per connection;
  yields the base URL, and stops accepting once the test is over."""
  listener = socket.socket()
  listener.bind(("127.0.0.1", 0))
  listener.listen()

  def serve():
    while True:
      try:
        connection, _ = listener.accept()
      except OSError:  # closed: the test is over
        return
      threading.Thread(target=handle, args=(connection,), daemon=True).start()

  threading.Thread(target=serve, daemon=True).start()
  yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
  listener.close()


@pytest.fixture
def not_http_server():
  """A base URL whose server answers every request with bytes that are not HTTP."""
  def garbage(connection):
    with connection:
      connection.recv(65536)
      connection.sendall(b"garbage\r\n\r\n")
  yield from socket_server(garbage)


# ---------------------------------------------------------------- downloads


def test_download_into_an_empty_directory(mirror, tmp_path, capsys):
  url = mirror()
  target = tmp_path / "new" / "MNIST"  # created on the way
  input_data.maybe_download(str(target), [url])
  assert_holds_the_verified_files(target)
  assert sorted(mirror.requests[url]) == NAMES  # each fetched once
  err = capsys.readouterr().err
  for name in NAMES:
    assert f"Downloading {name} from {url}{name}" in err
  # Present, verified files are used as they are: no mirror needed.
  input_data.maybe_download(str(target), [closed_port_url()])


def _flip_a_byte(name, body):
  return body[:100] + bytes([body[100] ^ 0xFF]) + body[101:], len(body)


def _cut_short_claiming_full_length(name, body):
  return body[:len(body) // 2], len(body)


def _cut_short(name, body):
  return body[:len(body) // 2], len(body) // 2


@pytest.mark.parametrize("damage", [
    _flip_a_byte, _cut_short_claiming_full_length, _cut_short])
def test_corrupted_download_is_rejected_and_not_cached(mirror, tmp_path, damage):
  bad = input_data.TEST_LABELS  # the second file fetched

  def damage_one(name, body):
    return damage(name, body) if name == bad else (body, len(body))

  url = mirror(damage_one)
  target = tmp_path / "MNIST"
  with pytest.raises(DataError) as caught:
    input_data.maybe_download(str(target), [url])
  message = str(caught.value)
  assert f"could not download {bad} ({url}{bad}: checksum mismatch)" in message
  assert "\n" not in message
  # The file before it stays (verified); the bad one left no trace.
  assert os.listdir(target) == [input_data.TEST_IMAGES]
  # A good mirror later completes the directory.
  input_data.maybe_download(str(target), [mirror()])
  assert_holds_the_verified_files(target)


@pytest.mark.parametrize("first", ["closed port", "404", "not HTTP", "corrupt"])
def test_a_failing_first_mirror_falls_back_to_the_second(
    mirror, not_http_server, tmp_path, capsys, first):
  first_url = {"closed port": closed_port_url,
               "404": lambda: mirror() + "no/such/dir/",
               "not HTTP": lambda: not_http_server,
               "corrupt": lambda: mirror(_flip_a_byte)}[first]()
  second_url = mirror()
  input_data.maybe_download(str(tmp_path), [first_url, second_url])
  assert_holds_the_verified_files(tmp_path)
  assert sorted(mirror.requests[second_url]) == NAMES
  err = capsys.readouterr().err
  assert "Traceback" not in err
  for name in NAMES:
    assert f"Downloading {name} from {second_url}{name}" in err


def test_default_directory_is_MNIST_data_in_the_working_directory(
    mirror, tmp_path, monkeypatch):
  monkeypatch.delenv(input_data.DATA_DIR_ENV, raising=False)
  monkeypatch.chdir(tmp_path)
  data_sets = input_data.read_data_sets(None, dtype=np.uint8,
                                        source_urls=[mirror()])
  assert_holds_the_verified_files(tmp_path / "MNIST_data")
  assert os.listdir(tmp_path) == ["MNIST_data"]
  assert data_sets.train.num_examples == 55000


# ---------------------------------------------------------------- bad input


def test_missing_files_and_no_network(tmp_path, capsys):
  target = tmp_path / "empty"
  with pytest.raises(DataError) as caught:
    input_data.maybe_download(str(target), [closed_port_url(), closed_port_url()])
  message = str(caught.value)
  assert "\n" not in message
  assert message.startswith(f"MNIST files missing from {target}: "
                            + ", ".join(NAMES))
  assert "Connection refused" in message
  assert f"put the four MNIST .gz files in {target}" in message
  assert "--data_dir" in message and "$MNIST_DATA_DIR" in message
  assert not target.exists()  # no partial download, not even the directory
  assert capsys.readouterr().err == ""  # unreachable mirrors: the error says it


def test_present_file_with_wrong_checksum_is_never_used_or_replaced(
    data_dir, mirror, tmp_path):
  copy_files(data_dir, tmp_path / "d")
  bad = tmp_path / "d" / input_data.TRAIN_LABELS
  flip_byte(bad)
  damaged = bad.read_bytes()
  url = mirror()
  with pytest.raises(DataError) as caught:
    input_data.maybe_download(str(tmp_path / "d"), [url])
  message = str(caught.value)
  assert message.startswith(f"{bad} is not the official MNIST file (SHA-256 "
                            "mismatch); delete it to download it again")
  assert "\n" not in message
  with pytest.raises(DataError, match="SHA-256 mismatch"):
    input_data.read_data_sets(str(tmp_path / "d"), source_urls=[url])
  assert bad.read_bytes() == damaged  # not replaced...
  assert sorted(os.listdir(tmp_path / "d")) == NAMES  # ...nor anything added
  assert mirror.requests[url] == []  # not even asked for


@pytest.fixture
def cli(monkeypatch):
  """Runs `legacy.hw04` as a user would, quickly and without network."""
  monkeypatch.delenv("MNIST_PORT_VERBOSE", raising=False)

  def run(data_dir):
    return run_module("legacy.hw04", "--data_dir", data_dir, "--train_limit", 100,
                      "--training_epochs", 1, timeout=120)
  return run


def test_cli_missing_files_and_no_network(cli, tmp_path):
  target = tmp_path / "missing"
  line = assert_one_error_line(
      cli(target), f"MNIST files missing from {target}: " + ", ".join(NAMES),
      input_data.SOURCE_URLS[0], input_data.SOURCE_URLS[1], "--data_dir",
      "$MNIST_DATA_DIR")
  assert line.count("Connection refused") == 2  # the dead proxy, per mirror


def test_cli_present_file_with_wrong_checksum(cli, data_dir, tmp_path):
  copy_files(data_dir, tmp_path / "d")
  bad = tmp_path / "d" / input_data.TEST_IMAGES
  flip_byte(bad, offset=5000)
  damaged = bad.read_bytes()
  assert_one_error_line(cli(tmp_path / "d"),
                        f"{bad} is not the official MNIST file (SHA-256 mismatch)")
  assert bad.read_bytes() == damaged
  assert sorted(os.listdir(tmp_path / "d")) == NAMES


# ---------------------------------------------------------------- read-only

# The runs go through run_python_without_write_privilege (helpers.py): even
# as root, a 0o555 directory then refuses to be written to.


@pytest.fixture
def read_only_dir(tmp_path):
  directory = tmp_path / "read-only"
  directory.mkdir(mode=0o555)
  directory.chmod(0o555)  # mkdir's mode is filtered by the umask
  yield directory
  directory.chmod(0o755)  # so that pytest can clean it up


_MAYBE_DOWNLOAD = """
import sys
from common import input_data
try:
  input_data.maybe_download(sys.argv[1], [sys.argv[2]])
except input_data.DataError as e:
  print(e)
  sys.exit(3)
"""


def test_read_only_directory_missing_files(read_only_dir):
  result = run_python_without_write_privilege(
      "-c", _MAYBE_DOWNLOAD, read_only_dir, closed_port_url())
  assert result.returncode == 3, result.stdout + result.stderr
  assert result.stderr == ""
  lines = result.stdout.splitlines()
  assert len(lines) == 1
  assert lines[0].startswith(f"MNIST files missing from {read_only_dir}: "
                             + ", ".join(NAMES))
  assert f"cannot write to {read_only_dir} (Permission denied)" in lines[0]
  assert "--data_dir" in lines[0] and "$MNIST_DATA_DIR" in lines[0]
  assert os.listdir(read_only_dir) == []


def test_cli_read_only_directory_missing_files(read_only_dir, monkeypatch):
  monkeypatch.delenv("MNIST_PORT_VERBOSE", raising=False)
  result = run_python_without_write_privilege(
      "-m", "legacy.hw04", "--data_dir", read_only_dir, "--train_limit", 100,
      "--training_epochs", 1)
  assert_one_error_line(
      result, f"MNIST files missing from {read_only_dir}: " + ", ".join(NAMES),
      f"cannot write to {read_only_dir} (Permission denied)", "--data_dir",
      "$MNIST_DATA_DIR")
  assert os.listdir(read_only_dir) == []



# ------------------------------------------------- slow mirrors, interruptions


@pytest.fixture
def drip_server():
  """A base URL whose server (or proxy) sends one byte every 0.2 s, for at
  most 60 s a connection: a per-read timeout never fires on it."""
  def drip(connection):
    with connection:
      connection.recv(65536)
      for byte in b"HTTP/1.1 200 OK\r\n".ljust(300, b"x"):
        try:
          connection.sendall(bytes([byte]))
        except OSError:  # the client gave up
          return
        time.sleep(0.2)
  yield from socket_server(drip)


def through_proxy(proxy, **env):
  """run_module's env= for downloads through `proxy` (the real mirrors'
  https:// URLs never leave this machine)."""
  return dict(env, https_proxy=proxy, HTTPS_PROXY=proxy)


def test_a_dripping_proxy_is_named_at_once_and_given_up_at_the_deadline(
    drip_server, tmp_path):
  target = tmp_path / "missing" / "deep" / "dir"
  start = time.monotonic()
  result = run_module("legacy.hw04", "--data_dir", target, "--train_limit", 100,
                      env=through_proxy(drip_server, **{input_data.DEADLINE_ENV: "2"}),
                      timeout=60)
  elapsed = time.monotonic() - start
  assert result.returncode == 2, result.stderr
  lines = result.stderr.splitlines()
  # Named while it waits for the first mirror, then one error line.
  first = input_data.TEST_IMAGES
  assert lines[0] == f"Downloading {first} from {input_data.SOURCE_URLS[0]}{first}"
  assert len(lines) == 2 and lines[1].startswith("error: MNIST files missing")
  assert "no complete file within the 2 s deadline" in lines[1]
  assert "not tried, the 2 s deadline passed" in lines[1]  # the second mirror
  assert elapsed < 30  # one file's deadline, not the drip's 60 s
  assert os.listdir(tmp_path) == []  # 22: every directory it made is gone


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130),
                                            (signal.SIGTERM, 143)])
def test_a_signal_during_a_download_leaves_nothing(drip_server, tmp_path, signum,
                                                   status):
  target = tmp_path / "new" / "MNIST"
  env = dict(os.environ, **through_proxy(drip_server))
  env.pop(input_data.DATA_DIR_ENV, None)
  proc = subprocess.Popen(
      [sys.executable, "-m", "modern.hw04", "--data_dir", str(target)],
      cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
  try:
    announced = proc.stderr.readline()  # the download is under way
    assert announced.startswith(f"Downloading {input_data.TEST_IMAGES}"), announced
    assert [n for n in os.listdir(target) if n.endswith(".part")]
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
  finally:
    proc.kill()
    proc.wait()
  assert proc.returncode == status, err
  assert err.splitlines() == [f"error: {'interrupted' if status == 130 else 'terminated'}"]
  assert out == ""
  assert os.listdir(tmp_path) == []


def test_a_killed_downloads_part_files_are_removed_by_the_next(mirror, tmp_path):
  stale = [f".{input_data.TEST_IMAGES}.4194305-1a2b3c4d.part",  # past pid_max's limit
           f".{input_data.TRAIN_LABELS}.k2j3h4_x.part"]  # tempfile's old names
  live = f".{input_data.TEST_LABELS}.{os.getppid()}-5e6f7a8b.part"  # in progress
  for name in [*stale, live]:
    (tmp_path / name).write_bytes(b"")
  input_data.maybe_download(str(tmp_path), [mirror()])
  assert sorted(os.listdir(tmp_path)) == sorted([*NAMES, live])


def test_missing_deep_directory_and_no_network_leaves_no_level(tmp_path):  # 22
  with pytest.raises(DataError):
    input_data.maybe_download(str(tmp_path / "missing" / "deep" / "dir"),
                              [closed_port_url()])
  assert os.listdir(tmp_path) == []


def test_the_deadline_variable_must_be_a_number(monkeypatch, tmp_path):
  monkeypatch.setenv(input_data.DEADLINE_ENV, "soon")
  with pytest.raises(DataError, match=input_data.DEADLINE_ENV):
    input_data.maybe_download(str(tmp_path), [closed_port_url()])
