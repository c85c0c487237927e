"""`bocker build` end to end (issue 17): see the test docstrings."""


def test_debian_image_compiles(bocker, debian_image):
    """The fixture's image: gcc in it makes a static binary."""
    proc = bocker("run", "--rm", debian_image, "sh", "-c",
                  "printf 'int main(void){return 0;}' >/tmp/t.c && gcc -static -o /tmp/t /tmp/t.c"
                  " && /tmp/t && echo ok", timeout=300)
    assert (proc.returncode, proc.stdout) == (0, "ok\n"), proc.stderr
