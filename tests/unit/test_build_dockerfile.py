"""The Dockerfile parser: directives, continuations, forms, flags, errors."""
import json

import pytest
from hypothesis import given, settings, strategies as st

from bocker.build.dockerfile import MAX_TEXT, parse
from bocker.build.errors import BuildError


def one(text):
    """The only instruction of the first stage after `FROM x`."""
    df = parse("FROM x\n" + text)
    (ins,) = df.stages[0].instructions
    return ins


def error(text):
    with pytest.raises(BuildError) as e:
        parse(text)
    return e.value


def test_multi_stage():
    df = parse("ARG V=1\nFROM --platform=linux/amd64 debian:$V AS Build\nRUN make\n"
               "FROM scratch\nCOPY --from=build /out /\n")
    assert df.escape == "\\" and df.syntax is None
    assert [a.args for a in df.global_args] == ["V=1"]
    b, s = df.stages
    assert (b.index, b.name, b.base, b.platform, b.from_line) == (
        0, "build", "debian:$V", "linux/amd64", 2)
    assert (s.index, s.name, s.base, s.platform, s.from_line) == (1, None, "scratch", None, 4)
    assert [i.keyword for i in b.instructions] == ["RUN"]
    cp = s.instructions[0]
    assert (cp.line, cp.flags, cp.args, cp.json) == (5, (("from", "build"),), "/out /", None)
    assert cp.original == "COPY --from=build /out /"
    assert df.stage("BUILD") is b and df.stage("1") is s and df.stage("nope") is None


def test_continuations_comments_and_empty_lines():
    df = parse("FROM x\n  run apt-get install \\\n  # a comment\n    gcc \\\n\n    make\n"
               "# last\nCMD [\"a\"]\n")
    run, cmd = df.stages[0].instructions
    assert run.keyword == "RUN" and run.line == 2
    assert run.args == "apt-get install     gcc     make"
    assert run.original == "run apt-get install     gcc     make"
    assert cmd.line == 8 and cmd.json == ("a",)


def test_continuation_with_trailing_blanks_and_crlf():
    assert one("RUN a \\  \r\nb\r\n").args == "a b"


def test_continuation_at_end_of_file():
    assert one("RUN a \\").args == "a"


def test_escape_directive():
    df = parse("# escape=`\nFROM x\nRUN dir c:\\ `\n  && echo hi\n")
    assert df.escape == "`"
    assert df.stages[0].instructions[0].args == "dir c:\\   && echo hi"


def test_directives_only_at_the_top():
    df = parse("# syntax = docker/dockerfile:1\n#ESCAPE=`\n\n# escape=\\\nFROM x\n")
    assert (df.syntax, df.escape) == ("docker/dockerfile:1", "`")
    # after a comment, an unknown directive or a blank line: a comment
    assert parse("# hello\n# escape=`\nFROM x\n").escape == "\\"
    assert parse("# foo=bar\n# escape=`\nFROM x\n").escape == "\\"
    assert parse("FROM x\n# escape=`\n").escape == "\\"


@pytest.mark.parametrize("text,line,fragment", [
    ("# escape=x\nFROM a\n", 1, "invalid escape"),
    ("# escape=`\n# escape=`\nFROM a\n", 2, "only one escape"),
    ("FROM a\nFOO bar\n", 2, "unknown instruction: FOO"),
    ("RUN x\nFROM a\n", 1, "before the first FROM"),
    ("# c\n\n", 1, "no FROM"),
    ("", 1, "no FROM"),
    ("FROM\n", 1, "FROM requires"),
    ("FROM a b\n", 1, "FROM [--platform"),
    ("FROM a AS 1x\n", 1, "invalid name"),
    ("FROM a AS b\nFROM c AS B\n", 2, "duplicate name"),
    ("FROM a\nRUN --mount=type=cache,target=/x make\n", 2, "RUN --mount is not supported"),
    ("FROM a\nRUN --network=none make\n", 2, "--network"),
    ("FROM a\nRUN --security=insecure make\n", 2, "--security"),
    ("FROM a\nCOPY --bogus=1 a b\n", 2, "unknown flag: --bogus"),
    ("FROM a\nCOPY --from a b\n", 2, "needs a value"),
    ("FROM a\nCOPY --link=maybe a b\n", 2, "true or false"),
    ("FROM a\nENV --x=1 A=b\n", 2, "unknown flag"),
    ("FROM a\nRUN <<EOF\necho\nEOF\n", 2, "heredocs"),
    ("FROM a\nCOPY <<-'EOT' /x\n", 2, "heredocs"),
    ("FROM a\nSHELL /bin/bash -c\n", 2, "JSON form"),
    ("FROM a\nRUN []\n", 2, "at least one"),
    ("FROM a\nENV\n", 2, "ENV requires"),
    ("FROM a\n\nWORKDIR   \n", 3, "WORKDIR requires"),
    ("FROM a\nHEALTHCHECK NONE x\n", 2, "NONE takes no"),
    ("FROM a\nHEALTHCHECK curl x\n", 2, "NONE or"),
    ("FROM a\nHEALTHCHECK --interval=1s CMD\n", 2, "requires a command"),
    ("FROM a\nONBUILD FROM b\n", 2, "isn't allowed"),
    ("FROM a\nONBUILD NOPE b\n", 2, "unknown instruction in ONBUILD"),
    ("FROM a\nRUN a\0b\n", 2, "NUL"),
    ("FROM a\nCOPY onlyone\n", 2, "at least two"),
    ("FROM a\nADD [\"x\"]\n", 2, "at least two"),
    ("FROM a\nCOPY 'a b\n", 2, "single-quote"),
    ("FROM a\nENV A=1 B\n", 2, "can't find ="),
    ("FROM a\nLABEL a=\"x\n", 2, "double-quote"),
    ("ARG =x\nFROM a\n", 1, "empty or invalid"),
    ("FROM a\nADD --checksum=sha256:00 http://x /y\n", 2, "not supported"),
])
def test_errors_name_the_line(text, line, fragment):
    e = error(text)
    assert e.line == line
    assert str(e).startswith(f"Dockerfile:{line}: ")
    assert fragment in str(e)
    assert "\n" not in str(e)


def test_exec_and_shell_forms():
    assert one('CMD ["a", "b c"]').json == ("a", "b c")
    assert one("CMD []").json == ()
    assert one("CMD").json is None and one("CMD").args == ""
    assert one('RUN ["a", 1]').json is None        # not strings: shell form
    assert one("RUN [not json").json is None
    assert one("RUN [ \"a\" ]").json == ("a",)
    assert one('ENV A=["x"]').json is None          # ENV has no exec form
    assert one('SHELL ["/bin/bash", "-c"]').json == ("/bin/bash", "-c")
    assert one('VOLUME ["/a", "/b"]').json == ("/a", "/b")


def test_flags():
    ins = one("COPY --chown=1:2 --chmod=0755 --link --from=s a b")
    assert ins.flags == (("chown", "1:2"), ("chmod", "0755"), ("link", None), ("from", "s"))
    assert ins.flag("chmod") == "0755" and ins.flag("nope", "d") == "d"
    assert ins.args == "a b"
    assert one("ADD --link=false a b").flags == (("link", "false"),)
    hc = one('HEALTHCHECK --interval=5s --timeout=1s --start-period=2s --start-interval=1s'
             ' --retries=3 CMD ["true"]')
    assert [k for k, _ in hc.flags] == ["interval", "timeout", "start-period",
                                        "start-interval", "retries"]
    assert hc.args == 'CMD ["true"]' and hc.json == ("true",)
    assert one("HEALTHCHECK CMD curl -f x").json is None
    assert one("HEALTHCHECK NONE").json is None


def test_keywords_and_misc():
    for kw in ("ENV A=1", "ARG A", "WORKDIR /x", "USER u", "EXPOSE 80", "LABEL a=b",
               "ENTRYPOINT x", "VOLUME /v", "STOPSIGNAL TERM", "MAINTAINER me",
               "ONBUILD RUN x", "ADD a b"):
        assert one(kw).keyword == kw.split()[0]
    assert one("onbuild run make").args == "run make"
    assert one("RUN echo $((1<<2))").args == "echo $((1<<2))"  # a shift, not a heredoc


def test_bom_and_size_bound():
    assert parse("\ufeffFROM x\n").stages[0].base == "x"
    e = error("FROM x\n" + "#" * MAX_TEXT)
    assert "larger than" in str(e)


_LINE = st.text(alphabet=st.sampled_from(list("FROMRUNCOPYx #\\`[]\"{}$-=\t")), max_size=25)


@settings(max_examples=300, deadline=None)
@given(st.lists(_LINE, max_size=8))
def test_parse_raises_only_build_errors(lines):
    try:
        parse("\n".join(lines))
    except BuildError as e:
        assert str(e).startswith("Dockerfile:") and "\n" not in str(e)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",),
                                               blacklist_characters="\0"), max_size=8),
                min_size=1, max_size=5))
def test_exec_form_round_trips(argv):
    text = json.dumps(argv)
    df = parse("FROM x\nRUN " + text + "\n")
    ins = df.stages[0].instructions[0]
    assert ins.json == tuple(argv)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.from_regex(r"[a-z0-9][a-z0-9 ]{0,10}", fullmatch=True), min_size=1,
                max_size=5))
def test_continuation_joins_lines(parts):
    text = "FROM x\nRUN " + " \\\n".join(parts) + "\n"
    assert parse(text).stages[0].instructions[0].args == " ".join(parts).strip()
