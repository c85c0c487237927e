"""The scripts a Docker user writes, replayed with `docker` meaning bocker.

Each test writes a shell script as it would be written for Docker, puts a
`docker` that is bocker first on PATH, and runs it with `set -eu`: a flag
bocker lacks, an output shape a script cannot parse, or an exit code that
differs fails the script.  Traffic goes only to the host's loopback
(published ports bound to 127.0.0.1).
"""
import os
import subprocess
import time
import urllib.request

from conftest import BOCKER


def _docker_script(tmp_path, body, step="1", timeout=120, **variables):
    """Run body under sh -eu with `docker` = bocker, in tmp_path/step (a
    script of its own each step); returns the CompletedProcess."""
    work = tmp_path / step
    (work / "bin").mkdir(parents=True)
    os.symlink(BOCKER, work / "bin" / "docker")
    (work / "script.sh").write_text("set -eu\n" + body)
    env = {**os.environ, **variables, "PATH": f"{work / 'bin'}:{os.environ['PATH']}"}
    return subprocess.run(["sh", "script.sh"], cwd=work, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _get(url, tries=100):
    for _ in range(tries):
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read().decode()
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


def _lines(text):
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_web_server_script(tmp_path, bocker):
    """Named volume, a labelled detached server on a published port, found
    by label, addressed through inspect -f, files copied in and out, a
    restart that keeps the volume's data, rm -fv that keeps the named
    volume, and volume rm."""
    names = {"NAME": f"web-{os.getpid()}", "VOL": f"webdata-{os.getpid()}",
             "LABEL": f"demo-{os.getpid()}"}
    out = _docker_script(tmp_path, **names, body="""
docker volume create $VOL >/dev/null
docker run -d --name $NAME --label app=$LABEL -p 127.0.0.1::80 -v $VOL:/www \\
    busybox httpd -f -p 80 -h /www >/dev/null
id=$(docker ps --filter label=app=$LABEL --format '{{.ID}}')
[ -n "$id" ] && [ "$(echo "$id" | wc -l)" -eq 1 ]
echo "id=$id"
echo "ip=$(docker inspect -f '{{.NetworkSettings.IPAddress}}' "$id")"
echo "pid=$(docker inspect -f '{{.State.Pid}}' $NAME)"
echo "hostport=$(docker port "$id" 80/tcp)"
echo "hello from the host" > index.html
docker cp index.html "$id":/www/index.html
""")
    assert out.returncode == 0, out.stdout + out.stderr
    got = _lines(out.stdout)
    try:
        assert got["ip"].count(".") == 3 and int(got["pid"]) > 1
        host, port = got["hostport"].splitlines()[0].rsplit(":", 1)
        assert host == "127.0.0.1"
        assert _get(f"http://127.0.0.1:{port}/index.html") == "hello from the host\n"

        out = _docker_script(tmp_path, step="2", **names, body="""
docker exec $NAME sh -c 'echo written inside > /www/inside.txt'
docker cp $NAME:/www/inside.txt ./inside.txt
cat inside.txt
docker restart $NAME >/dev/null
docker inspect -f '{{.State.Running}} {{.State.Pid}}' $NAME
docker port $NAME 80
""")
        assert out.returncode == 0, out.stdout + out.stderr
        lines = out.stdout.splitlines()
        assert lines[0] == "written inside"
        running, pid = lines[1].split()
        assert running == "true" and pid != got["pid"]
        port = lines[2].rsplit(":", 1)[1]
        # the volume kept what was copied in before the restart
        assert _get(f"http://127.0.0.1:{port}/index.html") == "hello from the host\n"
        out = _docker_script(tmp_path, step="3", **names, body="""
docker rm -fv $NAME >/dev/null
# the named volume outlives rm -v, with its data
docker run --rm -v $VOL:/data busybox cat /data/inside.txt
docker volume rm $VOL >/dev/null
docker volume ls -q --filter name=$VOL
""")
        assert out.returncode == 0, out.stdout + out.stderr
        assert out.stdout == "written inside\n"
    finally:  # whatever step failed, nothing of the script's is left
        bocker("rm", "-fv", names["NAME"])
        bocker("volume", "rm", "-f", names["VOL"])


def test_everyday_exit_codes_and_cleanup_script(tmp_path, bocker):
    """What scripts test with $?: Docker's codes, rm -f of nothing, an
    anonymous volume gone with rm -v, and rm never touching an image."""
    try:
        out = _docker_script(tmp_path, """
code() { set +e; "$@" >/dev/null 2>&1; echo $?; set -e; }
echo "missing_rm_f=$(code docker rm -f no-such-container-$$)"
echo "bad_flag=$(code docker run --no-such-flag busybox true)"
echo "not_found=$(code docker run --rm busybox no-such-command)"
echo "not_exec=$(code docker run --rm busybox /etc/passwd)"
echo "own_code=$(code docker run --rm busybox sh -c 'exit 3')"
echo "hostname=$(docker run --rm -h myhost busybox hostname)"
cid=$(docker create -v /scratch busybox true)
echo "$cid" > cid
vol=$(docker inspect -f '{{range .Mounts}}{{.Name}}{{end}}' "$cid")
docker start "$cid" >/dev/null
docker wait "$cid" >/dev/null
echo "vol_listed=$(docker volume ls -q | grep -c "^$vol$" || true)"
docker rm -v "$cid" >/dev/null
echo "vol_after_rm=$(docker volume ls -q | grep -c "^$vol$" || true)"
echo "rm_image=$(code docker rm busybox)"
echo "image_kept=$(docker images --format '{{.Repository}}' | grep -c '^busybox$')"
""")
        assert out.returncode == 0, out.stdout + out.stderr
        got = _lines(out.stdout)
        assert got == {"missing_rm_f": "0", "bad_flag": "125", "not_found": "127",
                       "not_exec": "126", "own_code": "3", "hostname": "myhost",
                       "vol_listed": "1", "vol_after_rm": "0", "rm_image": "1",
                       "image_kept": "1"}, out.stderr
    finally:  # the script's container and its anonymous volume, if it failed midway
        cid_file = tmp_path / "1" / "cid"
        if cid_file.exists() and cid_file.read_text().strip():
            bocker("rm", "-fv", cid_file.read_text().strip())

