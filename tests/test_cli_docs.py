# SPDX-License-Identifier: GPL-2.0
"""README.md's command table, the SYNOPSIS of docs/pktlens.8 and every command's --help list
exactly the options the command tables in cli/ define: `pktlens help --options -j` dumps the
tables, and each document is held to them. A new option documented nowhere, or an option the
docs keep after it went, fails here and says where."""
import json
import re
import subprocess
from pathlib import Path

import pytest

from lab import PKTLENS

ROOT = Path(__file__).resolve().parent.parent
OPT = re.compile(r"(?<![\w/-])(--[a-z][a-z0-9-]*|-[a-zA-Z]+)(?![\w-])")


def tables():
    r = subprocess.run([PKTLENS, "help", "--options", "-j"], capture_output=True, text=True,
                       check=True)
    return json.loads(r.stdout)


DUMP = tables()
COMMON = set(DUMP["common"])
COMMANDS = {c["command"]: c for c in DUMP["commands"]}


def spellings(opt):
    return {s for s in (opt["long"], opt["short"]) if s}


def documented(cmd):
    """The options of command path @cmd the docs must show: a set of spelling sets."""
    return [frozenset(spellings(o)) for o in COMMANDS[cmd]["options"] if not o["hidden"]]


def accepted(cmd):
    return set().union(*(spellings(o) for o in COMMANDS[cmd]["options"]))


def tokens(text):
    """Option words of a synopsis: -dd and -ddd are -d said twice and three times."""
    text = re.sub(r"\w\[-\w\]", "", text)     # port ranges: P[-P]
    return {re.sub(r"^-(d)d{1,2}$", r"-\1", t) for t in OPT.findall(text)} - COMMON


def commands_of(synopsis):
    """The command paths a synopsis names: 'tcp rtt|connlat ...' names two."""
    words = synopsis.replace(" | ", "|").split()
    if not words or words[0] not in {c.split()[0] for c in COMMANDS}:
        return []
    if words[0] in COMMANDS:
        return [words[0]]
    subs = words[1].split("|") if len(words) > 1 else []
    return [f"{words[0]} {s}" for s in subs if f"{words[0]} {s}" in COMMANDS]


def check(where, synopses):
    """Each synopsis lists the options of the commands it names, no more, no fewer; every
    command has one."""
    problems, seen = [], set()
    for syn in synopses:
        cmds = commands_of(syn)
        if not cmds:
            continue
        seen.update(cmds)
        got = tokens(syn)
        want = [s for c in cmds for s in documented(c)]
        known = set().union(*(accepted(c) for c in cmds))
        for extra in sorted(got - known):
            problems.append(f"{where}: '{syn}' lists {extra}, which {'/'.join(cmds)} does not take")
        for opt in want:
            if not opt & got:
                problems.append(f"{where}: '{syn}' lacks {'/'.join(sorted(opt))}")
    for cmd in sorted(set(COMMANDS) - seen):
        problems.append(f"{where}: no synopsis of 'pktlens {cmd}'")
    return problems


def readme_synopses():
    """The first cell of each row of README's command table, split at ' / '."""
    text = (ROOT / "README.md").read_text()
    table = text[text.index("| command | what it does |"):]
    table = table[:table.index("\n\n")]
    out = []
    for line in table.splitlines()[2:]:
        cell = line.split(" | ")[0].lstrip("| ").replace("\\|", "|")
        out += [s.strip(" `") for s in cell.split("` / `")]
    return out


def man_synopses():
    """SYNOPSIS of the man page, one entry per `.B pktlens CMD` line and what follows it."""
    text = (ROOT / "docs" / "pktlens.8").read_text()
    syn = text[text.index(".SH SYNOPSIS"):text.index(".SH DESCRIPTION")]
    out = []
    for block in re.split(r"\n(?=\.B pktlens )", syn)[1:]:
        words = []
        for line in block.splitlines():
            line = re.sub(r"^\.(B|I|BR|RB|IR|RI|BI|IB|br|PP)\b ?", "", line)
            line = line.replace("\\-", "-").replace("\\fI", "").replace("\\fP", "").replace("\\fR", "")
            words.append(line.replace('"', " "))
        out.append(" ".join(" ".join(words).split()).removeprefix("pktlens "))
    return out


def test_tables_dump_every_command():
    assert {"attach", "filter compile", "policy add", "tcp rtt", "export ipfix"} <= set(COMMANDS)
    for cmd, c in COMMANDS.items():
        assert c["synopsis"].startswith(f"pktlens {cmd}"), c


def test_readme_lists_the_tables_options():
    assert check("README.md", readme_synopses()) == []


def test_man_page_lists_the_tables_options():
    assert check("docs/pktlens.8", man_synopses()) == []


@pytest.mark.parametrize("obj", sorted({c.split()[0] for c in COMMANDS}))
def test_help_lists_the_tables_options(obj):
    r = subprocess.run([PKTLENS, obj, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith(f"Usage: pktlens {obj}") and not r.stderr
    got = tokens(r.stdout) | (set(OPT.findall(r.stdout)) & COMMON)
    for cmd in (c for c in COMMANDS if c.split()[0] == obj):
        for opt in documented(cmd):
            assert opt & got, f"pktlens {obj} --help lacks {'/'.join(sorted(opt))} of {cmd}"
        assert COMMANDS[cmd]["synopsis"].removeprefix("pktlens ") in " ".join(r.stdout.split())
    assert {"-j", "--json", "-h", "--help"} <= got


def test_the_check_sees_a_missing_and_an_extra_option():
    """The checker itself: a synopsis that lost --force or gained --frob is reported."""
    syn = COMMANDS["attach"]["synopsis"].removeprefix("pktlens ")
    short = syn.replace(" [--force]", "")
    assert [p for p in check("x", [short]) if "attach" in p] == [f"x: '{short}' lacks --force"]
    assert [p for p in check("x", [syn + " [--frob]"]) if "attach" in p] == \
        [f"x: '{syn} [--frob]' lists --frob, which attach does not take"]


@pytest.mark.parametrize("args,msg", [
    (["s"], "pktlens: 's' is ambiguous: stats or sample (see pktlens --help)\n"),
    (["policy", "l", "vb"], "pktlens: policy: 'l' is ambiguous: list or load (see pktlens policy --help)\n"),
    (["tcp", "r"], "pktlens: tcp: 'r' is ambiguous: retrans or rtt (see pktlens tcp --help)\n"),
    (["filter", "x"], "pktlens: filter: what is 'x'? (see pktlens filter --help)\n"),
])
def test_prefixes(args, msg):
    """Commands and sub-commands are chosen by a prefix that names one; others exit 2 naming
    the candidates."""
    r = subprocess.run([PKTLENS, *args], capture_output=True, text=True)
    assert (r.returncode, r.stderr) == (2, msg)


@pytest.mark.parametrize("args,msg", [
    (["attach", "lo", "--tcp-ts-max", "100"], "pktlens: attach: --tcp-ts-max: only with --tcp-passive\n"),
    (["attach", "--tcp-ts-max=64", "nodev0"], "pktlens: attach: --tcp-ts-max: only with --tcp-passive\n"),
])
def test_an_option_without_the_one_it_belongs_to(args, msg):
    """An option that means nothing without another is refused, not ignored: exit 2, nothing
    attached."""
    r = subprocess.run([PKTLENS, *args], capture_output=True, text=True)
    assert (r.returncode, r.stderr) == (2, msg)


def test_prefix_runs_the_command():
    for words in (["fil", "comp", "--help"], ["filter", "r", "--help"], ["pol", "a", "-h"],
                  ["tc", "--help"]):
        r = subprocess.run([PKTLENS, *words], capture_output=True, text=True)
        assert r.returncode == 0 and not r.stderr, (words, r)
    r = subprocess.run([PKTLENS, "fil", "comp", "-j", "udp"], capture_output=True, text=True)
    assert json.loads(r.stdout)["expression"] == "udp"
    r = subprocess.run([PKTLENS, "export", "p", "--listen", "nowhere"], capture_output=True, text=True)
    assert (r.returncode, r.stderr) == (2, "pktlens: export prometheus: --listen 'nowhere': not "
                                           "ADDR:PORT (e.g. 127.0.0.1:9435, [::1]:9435, :9435 for every address)\n")


@pytest.mark.parametrize("cmd", [["attach"], ["detach"], ["stats", "a", "b"], ["flows", "a", "b"],
                                 ["top", "a", "b"], ["sample"], ["tcp", "rtt", "x"],
                                 ["export", "ipfix"], ["filter", "set", "vb"], ["policy", "del", "vb"]])
def test_json_after_every_command(cmd):
    """-j after the command is the global -j: its error is a JSON document too."""
    r = subprocess.run([PKTLENS, *cmd, "-j"], capture_output=True, text=True)
    assert r.returncode == 2 and "error" in json.loads(r.stdout), r
    assert r.stderr.startswith(f"pktlens: {' '.join(cmd[:2]) if cmd[0] in ('tcp', 'export', 'filter', 'policy') else cmd[0]}: ")


@pytest.mark.parametrize("words", [["-j", "tcp"], ["tcp", "-j"], ["-p", "policy"], ["filter", "--json"],
                                   ["-j", "export"]])
def test_json_without_a_sub_command(words):
    """`pktlens -j OBJ` without its sub-command is an error document as `pktlens -j` without
    a command is (it had printed only the usage to stderr, nothing on stdout); without -j
    the usage stays."""
    obj = [w for w in words if not w.startswith("-")][0]
    r = subprocess.run([PKTLENS, *words], capture_output=True, text=True)
    assert r.returncode == 2
    assert json.loads(r.stdout) == {"error": f"{obj}: no sub-command (see pktlens {obj} --help)"}
    assert r.stderr == f"pktlens: {obj}: no sub-command (see pktlens {obj} --help)\n"
    r = subprocess.run([PKTLENS, obj], capture_output=True, text=True)
    assert (r.returncode, r.stdout) == (2, "") and r.stderr.startswith(f"Usage: pktlens {obj} ")


@pytest.mark.parametrize("args,rc,out,err", [
    (["-jp", "-V"], 0, "{\n", ""),
    (["-pj", "-V"], 0, "{\n", ""),
    (["-nnosuch16", "list"], 2, "", "pktlens: list: netns 'nosuch16': No such file or directory\n"),
    (["-jnnosuch16", "list"], 2, '{"error":"list: netns \'nosuch16\': No such file or directory"}\n',
     "pktlens: list: netns 'nosuch16': No such file or directory\n"),
    (["--netns=", "list"], 2, "", "pktlens: option '--netns' needs a network namespace\n"),
    (["--netns"], 2, "", "pktlens: option '--netns' needs a network namespace\n"),
    (["-n"], 2, "", "pktlens: option '-n' needs a network namespace\n"),
    # a second namespace silently won: `-n B -n C stats --reset` reset C's counters
    (["-n", "nosuch16", "-n", "nosuch17", "stats", "--reset"], 2, "",
     "pktlens: -n given twice (see pktlens --help)\n"),
    (["--netns=nosuch16", "-nnosuch17", "list"], 2, "", "pktlens: -n given twice (see pktlens --help)\n"),
    (["-n", "nosuch16", "--netns", "nosuch17", "list"], 2, "",
     "pktlens: --netns given twice (see pktlens --help)\n"),
    (["-j", "--", "-V"], 2, '{"error":"what is \'-V\'? (see pktlens --help)"}\n',
     "pktlens: what is '-V'? (see pktlens --help)\n"),
    (["-px", "list"], 2, '{"error":"unknown option \'-x\' (see pktlens --help)"}\n',
     "pktlens: unknown option '-x' (see pktlens --help)\n"),
    (["--json=1", "list"], 2, "", "pktlens: --json takes no value (see pktlens --help)\n"),
    (["--version=2"], 2, "", "pktlens: --version takes no value (see pktlens --help)\n"),
    (["--nosuch=1", "list"], 2, "", "pktlens: unknown option '--nosuch=1' (see pktlens --help)\n"),
    (["list", "--json=1"], 2, "", "pktlens: list: --json takes no value (see pktlens list --help)\n"),
    (["policy", "--pretty=1"], 2, "", "pktlens: policy: --pretty takes no value (see pktlens policy --help)\n"),
    # a command's own option that takes no value, given one: it said "unknown option"
    (["attach", "lo", "--tcp-passive=1"], 2, "",
     "pktlens: attach: --tcp-passive takes no value (see pktlens attach --help)\n"),
    (["stats", "--reset=yes"], 2, "", "pktlens: stats: --reset takes no value (see pktlens stats --help)\n"),
    (["stats", "--resets=yes"], 2, "", "pktlens: stats: unknown option '--resets=yes' (see pktlens stats --help)\n"),
])
def test_global_options_in_getopt_forms(args, rc, out, err):
    """The global options take getopt's forms as every command's options do: bundles (-jp),
    -nNETNS, --netns= (empty: a missing value), -- to end them; they had been refused as
    unknown options. A long common option given a value is named as given (it had been
    '-j'), and said to take none, as any option of a command that takes none (it had been
    'unknown option')."""
    r = subprocess.run([PKTLENS, *args], capture_output=True, text=True)
    assert (r.returncode, r.stderr) == (rc, err)
    assert r.stdout.startswith(out) if rc == 0 else r.stdout == out


@pytest.mark.parametrize("args", [["flows", "lo", "--sort", "foo", "-j"], ["flows", "--top", "0", "-p"],
                                  ["stats", "lo", "--watch", "0", "--json"],
                                  ["export", "ipfix", "--interval", "0", "-j"],
                                  ["top", "--interval", "0", "-j"], ["attach", "lo", "--xdp", "fast", "-j"]])
def test_json_after_a_bad_option_is_still_json(args):
    """-j (or -p) after the option it would report: the error is JSON on stdout as with -j
    first (stdout was empty, so `... -j | jq` got nothing), and the one line on stderr."""
    moved = [a for a in args if a not in ("-j", "-p", "--json")]
    first = subprocess.run([PKTLENS, moved[0], *([a for a in args if a in ("-j", "-p", "--json")]), *moved[1:]],
                           capture_output=True, text=True)
    r = subprocess.run([PKTLENS, *args], capture_output=True, text=True)
    assert r.returncode == first.returncode == 2
    assert r.stdout == first.stdout and json.loads(r.stdout)["error"], (r.stdout, first.stdout)
    assert r.stderr == first.stderr and r.stderr.count("\n") == 1


def test_option_value_that_reads_like_json_is_a_value():
    """A value that reads like -j (a file named -j) is the option's value, not -j."""
    r = subprocess.run([PKTLENS, "filter", "run", "-r", "-j", "udp"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stdout == "" and "-j" in r.stderr, r


def test_missing_value_and_unknown_option():
    r = subprocess.run([PKTLENS, "sample", "vb", "--snaplen"], capture_output=True, text=True)
    assert (r.returncode, r.stderr) == (2, "pktlens: sample: --snaplen needs a value "
                                           "(see pktlens sample --help)\n")
    r = subprocess.run([PKTLENS, "top", "--bogus"], capture_output=True, text=True)
    assert (r.returncode, r.stderr) == (2, "pktlens: top: unknown option '--bogus' "
                                           "(see pktlens top --help)\n")


@pytest.mark.parametrize("args", [["-w", "-", "--snaplen", "x"], ["--snaplen", "x", "-w", "-"],
                                  ["--snaplen", "x", "--write=-"], ["-w-", "--snaplen", "x"]])
def test_json_errors_leave_a_capture_on_stdout_alone(args):
    """-j prints errors as JSON on stdout, but not into a capture piped to a reader (sample -w -):
    an option refused before -w - was seen put {"error": ...} into the pcap stream."""
    r = subprocess.run([PKTLENS, "-j", "sample", "vb", *args], capture_output=True, text=True)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == "pktlens: sample: --snaplen 'x': not in 0..262144\n"
    r = subprocess.run([PKTLENS, "-j", "sample", "vb", "--snaplen", "x", "-w", "f.pcap"],
                       capture_output=True, text=True)
    assert json.loads(r.stdout)["error"] == "sample: --snaplen 'x': not in 0..262144"


def test_prose_names_only_options_commands_take():
    """Every `CMD ... --opt` quoted in the prose of README and docs/ names an option CMD has
    (README had sent readers to `attach --filter`, which attach never had)."""
    tops = {c.split()[0] for c in COMMANDS}
    bad = []
    for doc in ["README.md", "docs/RELIABILITY.md", "docs/BENCHMARKS.md"]:
        for m in re.finditer(r"`([^`\n]+)`", (ROOT / doc).read_text()):
            words = m.group(1).replace("\\|", "|").split()
            words = words[1:] if words[:1] == ["pktlens"] else words
            if not words or words[0] not in tops:
                continue
            cmd = words[0]
            if len(words) > 1 and f"{cmd} {words[1]}" in COMMANDS:
                cmd = f"{cmd} {words[1]}"
            if cmd not in COMMANDS:
                continue
            for w in words:
                opt = re.match(r"--[a-z][a-z0-9-]*", w)
                if opt and opt.group(0) not in accepted(cmd) | COMMON:
                    bad.append(f"{doc}: {m.group(0)}: {cmd} has no {opt.group(0)}")
    assert not bad, "\n".join(bad)
