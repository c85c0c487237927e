"""The Go text/template subset of --format: what Docker users write, the
errors they get (one line, exit 125, never a traceback), and arbitrary
input (hypothesis)."""
import pytest
from hypothesis import given, settings, strategies as st

from bocker.cli import gotemplate, output
from bocker.cli.gotemplate import TemplateError, render

DATA = {"Id": "ps_0123456789ab", "Name": "/web",
        "State": {"Pid": 42, "Running": True, "Status": "running", "ExitCode": 0},
        "Config": {"Labels": {"com.example.tier": "front", "a": "b"},
                   "Cmd": ["sh", "-c", "sleep 1"], "Env": [], "Tty": False},
        "Mounts": [{"Name": "pg", "Destination": "/data"}, {"Source": "/h", "Destination": "/e"}],
        "Count": 3, "Empty": ""}


@pytest.mark.parametrize("template,expected", [
    ("{{.Name}}", "/web"),
    ("{{.State.Pid}}", "42"),
    ("{{ .State.Pid }}", "42"),
    ("{{json .Config.Labels}}", '{"com.example.tier":"front","a":"b"}'),
    ("{{json .Config.Cmd}}", '["sh","-c","sleep 1"]'),
    ('{{index .Config.Labels "com.example.tier"}}', "front"),
    ('{{index .Config.Labels "missing"}}', ""),
    ("{{index .Config.Cmd 1}}", "-c"),
    ("{{range .Mounts}}{{.Destination}} {{end}}", "/data /e "),
    ("{{range $m := .Mounts}}{{$m.Destination}}{{$.Name}},{{end}}", "/data/web,/e/web,"),
    ("{{range $i, $m := .Mounts}}{{$i}}{{end}}", "01"),
    ("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}", "a=b;com.example.tier=front;"),
    ("{{range .Nothing}}x{{else}}none{{end}}", "none"),
    ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
    ("{{if .Empty}}y{{else if .Count}}count{{else}}n{{end}}", "count"),
    ("{{if not .Empty}}empty{{end}}", "empty"),
    ('{{if eq .State.Status "running" "paused"}}live{{end}}', "live"),
    ('{{if ne .State.Status "running"}}x{{else}}same{{end}}', "same"),
    ("{{if and .State.Running (gt .Count 2)}}both{{end}}", "both"),
    ("{{if or .Empty .Count}}one{{end}}", "one"),
    ("{{.Name | upper}}", "/WEB"),
    ('{{"ABC" | lower}}', "abc"),
    ('{{join .Config.Cmd " "}}', "sh -c sleep 1"),
    ('{{printf "%s has %d" .Name .Count}}', "/web has 3"),
    ('{{printf "%5s|%-4d|%q" "ab" 7 "x"}}', '   ab|7   |"x"'),
    ('{{title "hello world"}}', "Hello World"),
    ("{{len .Mounts}}", "2"),
    ("{{len .Name}}", "4"),
    ("{{with .State}}{{.Pid}}{{end}}", "42"),
    ("{{with .Empty}}x{{else}}no{{end}}", "no"),
    ("{{(index .Mounts 0).Name}}", "pg"),
    ('{{"a\\tb\\n\\u00e9\\x41"}}', "a\tb\né\x41"),
    ("{{`raw\\n`}}", "raw\\n"),
    ("a {{- \" b \" -}} c", "a b c"),
    ("x{{/* a comment */}}y", "xy"),
    ("{{.Missing}}", "<no value>"),
    ("{{.Config.Cmd}}", "[sh -c sleep 1]"),
    ("{{.Config.Labels}}", "map[a:b com.example.tier:front]"),
    ("{{.State.Running}}", "true"),
    ('{{split "a,b" ","}}', "[a b]"),
    ('{{truncate "abcdef" 3}}', "abc"),
    ("{{$x := .Count}}{{$x}}", "3"),
    ("{{1}} {{1.5}} {{true}} {{0x10}}", "1 1.5 true 16"),
    ("{{print 1 2 \"a\"}}", "1 2a"),
    ('{{slice "abcdef" 1 3}}', "bc"),
    ("{{range 3}}{{.}}{{end}}", "012"),
])
def test_renders_as_go_does(template, expected):
    assert render(template, DATA) == expected


@pytest.mark.parametrize("template,message", [
    ("{{.Name", "unclosed action"),
    ("{{end}}", "unexpected {{end}}"),
    ("{{else}}", "unexpected {{else}}"),
    ("{{if .Name}}x", "missing {{end}}"),
    ("{{if .Name}}x{{else}}y{{else}}z{{end}}", "unexpected {{else}}"),
    ("{{nosuch .Name}}", 'function "nosuch" not defined'),
    ("{{.Name.Field}}", "can't evaluate field Field in type string"),
    ("{{.Missing.Field}}", "nil pointer evaluating .Field"),
    ("{{index .Config.Cmd 9}}", "index out of range"),
    ('{{"\\q"}}', "invalid escape"),
    ("{{}}", "missing value for command"),
    ("{{)}}", "unexpected ')'"),
    ("{{(.Name}}", "unclosed left paren"),
    ("{{.Name 3}}", "cannot take them"),
    ("{{$nope}}", 'undefined variable "$nope"'),
    ("{{range .Name}}{{end}}", "range can't iterate over /web"),
    ("{{template \"x\"}}", "not supported"),
    ("{{len 3}}", "len of type int"),
    ('{{eq .Count "3"}}', "incompatible types for comparison"),
    ("{{/* open", "unclosed comment"),
    ("{{|upper}}", "missing command before |"),
])
def test_bad_templates_fail_in_one_line(template, message):
    with pytest.raises(TemplateError) as e:
        render(template, DATA)
    assert message in str(e.value) and "\n" not in str(e.value)
    assert e.value.exit_code == 125


class Row:
    """A listing row: a struct with a method taking an argument."""

    ID = "ps_1"

    def Label(self, key):
        return {"k": "v"}.get(key, "")


def test_structs_methods_and_missing_fields():
    assert render('{{.ID}} {{.Label "k"}} {{.Label "x"}}|', Row()) == "ps_1 v |"
    with pytest.raises(TemplateError, match="can't evaluate field Nope"):
        render("{{.Nope}}", Row())
    with pytest.raises(TemplateError, match="can't evaluate field _secret"):
        render("{{._secret}}", Row())


def test_output_and_steps_are_bounded():
    with pytest.raises(TemplateError, match="too large"):
        render("{{range 10000}}{{range 100}}" + "x" * 200 + "{{end}}{{end}}", {})
    with pytest.raises(TemplateError, match="too many"):
        render("{{range 1000000000}}{{end}}", {})
    with pytest.raises(TemplateError, match="too many range steps"):
        render("{{range 1000}}{{range 1000}}{{range 1000}}{{end}}{{end}}{{end}}", {})


def test_listing_format_forms():
    assert output.listing_format("table {{.ID}}\\t{{.Names}}") == ("{{.ID}}\t{{.Names}}", True)
    assert output.listing_format("table") == (None, True)
    assert output.listing_format("") == (None, False)
    assert output.listing_format("json") == ("{{json .}}", False)
    assert output.listing_format("{{.ID}}\\n") == ("{{.ID}}\n", False)


def test_tabwriter_aligns_columns_as_dockers():
    text = "CONTAINER ID\tNAMES\tX\nps_1\tweb-long-name\ty\n"
    assert output.tabwriter(text).splitlines() == [
        "CONTAINER ID   NAMES           X",
        "ps_1           web-long-name   y"]
    # at least 10 wide
    assert output.tabwriter("a\tb\n") == "a         b\n"


def test_table_header_from_field_names(capsys):
    output.print_template("{{.ID}}\t{{.Names | lower}}\t{{.Label \"k\"}}\t{{.RunningFor}}",
                          [Row2()], {"ID": "CONTAINER ID", "RunningFor": "CREATED"},
                          table_=True)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["CONTAINER", "ID", "names", "LABEL", "CREATED"]
    assert lines[1].split() == ["ps_2", "web", "v", "now"]


class Row2(Row):
    ID, Names, RunningFor = "ps_2", "WEB", "now"


TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200)


@given(TEXT.filter(lambda t: "{{" not in t))
def test_text_without_actions_renders_as_itself(text):
    assert render(text, DATA) == text


@given(st.dictionaries(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True),
                       st.one_of(st.text(max_size=20), st.integers(-10**6, 10**6),
                                 st.booleans()), min_size=1, max_size=5))
def test_field_lookups_show_each_value(data):
    for key, value in data.items():
        assert render("{{." + key + "}}", data) == gotemplate.show(value)
        assert render("{{json ." + key + "}}", {"X": 1, **data}) == \
            __import__("json").dumps(value, ensure_ascii=False)


ACTION_PIECES = st.lists(st.sampled_from(
    ["{{", "}}", ".", ".Name", ".State.Pid", "$", "$x", ":=", "|", "(", ")", '"', "`", "'",
     "if", "else", "end", "range", "with", "json", "index", "printf", "eq", " ", "-", "1",
     "\\", "/*", "*/", "upper", "len", "x", "\n", "%d", "\t", "nil", "true", ","]),
    max_size=25).map("".join)


@settings(max_examples=400)
@given(st.one_of(ACTION_PIECES, TEXT))
def test_errors_never_traceback(source):
    try:
        result = render(source, DATA)
    except TemplateError as e:
        assert "\n" not in str(e) or "\n" in source
        return
    assert isinstance(result, str)
