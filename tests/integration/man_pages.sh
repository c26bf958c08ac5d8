# The man pages in docs/man stay true to the programs:
# (a) every config key herdd accepts is documented in herd.json.5, in its
#     section (the keys come from herdd itself: `herdd --check` on a config
#     with a bogus key at each level names the keys it expected; where a
#     level's message names none, from the C source that defines them);
# (b) every herdctl command and subcommand of `herdctl --help` is a
#     paragraph of herdctl.1's COMMANDS, and every option its --help names
#     appears in that paragraph; every option of `herdd --help` is in
#     herdd.8's OPTIONS; every environment variable the sources getenv() is
#     in the page's ENVIRONMENT;
# (c) each page renders with groff -man -ww without a warning (and
#     mandoc -Tlint when mandoc is installed; without groff, skipped);
# (d) the JSON examples of herd.json.5 pass `herdd --check`.
# "Documented" means a paragraph tag (.TP/.TQ) naming the key, qualified as
# herd.json.5 writes it (bus.tcp.events, backoff.max_ms, types.T.argv), in
# the section of its level, or for a command the paragraph whose tag starts
# with it (up to the next command's).
# HERD_MAN_DIR overrides the pages' directory (to try the test on a copy).
. "$(dirname "$0")/lib.sh"

MAN_DIR=${HERD_MAN_DIR:-$HERD_SOURCE_DIR/docs/man}
for p in herdd.8 herdctl.1 herd.json.5; do
    [ -f "$MAN_DIR/$p" ] || fail "$MAN_DIR/$p is missing"
done

python3 - "$HERDD" "$HERDCTL" "$MAN_DIR" "$HERD_SOURCE_DIR" "$T" <<'PY' || fail "the man pages and the programs disagree (above)"
import json, os, re, subprocess, sys

herdd, herdctl, man_dir, src, tmp = sys.argv[1:6]
errors, notes = [], []
BOGUS = "zzz_bogus"


def error(msg):
    errors.append(msg)
    print("  " + msg, file=sys.stderr)


# ---- roff ---------------------------------------------------------------

def unescape(s):
    s = re.sub(r"\\f(\[[^\]]*\]|\(..|.)", "", s)  # font changes
    s = s.replace(r"\(dq", '"').replace(r"\(aq", "'").replace(r"\-", "-")
    s = re.sub(r"\\\(\*?..", "", s)  # other special characters
    for a, b in ((r"\&", ""), (r"\%", ""), (r"\c", ""), (r"\|", ""), (r"\^", ""),
                 (r"\ ", " "), (r"\e", "\\")):
        s = s.replace(a, b)
    return s


def macro_text(line):
    """The text a macro line prints: its arguments, quotes removed; the
    font-alternating macros (.BR, .IR, ...) join them without spaces."""
    name, _, rest = line[1:].partition(" ")
    args = [a[1:-1] if a.startswith('"') else a
            for a in re.findall(r'"(?:[^"]|"")*"|\S+', rest)]
    joiner = "" if name in ("BR", "RB", "BI", "IB", "IR", "RI") else " "
    return unescape(joiner.join(a.replace('""', '"') for a in args))


class Page:
    def __init__(self, path):
        self.path = path
        self.lines = []  # (sh, ss, text) of every line
        self.tags = []   # (sh, ss, index into lines, tag text)
        sh = ss = ""
        want_tag = False
        for raw in open(path, encoding="utf-8").read().split("\n"):
            if raw.startswith(".\\\"") or raw.startswith("'\\\""):
                continue
            if raw.startswith("."):
                name = raw[1:].split(" ", 1)[0]
                if name == "SH":
                    sh, ss = macro_text(raw), ""
                    continue
                if name == "SS":
                    ss = macro_text(raw)
                    continue
                if name in ("TP", "TQ"):
                    want_tag = True
                    continue
                text = macro_text(raw)
            else:
                text = unescape(raw)
            self.lines.append((sh, ss, text))
            if want_tag:
                self.tags.append((sh, ss, len(self.lines) - 1, text))
                want_tag = False

    def tag_tokens(self, sh=None, ss=None):
        """Every word of every paragraph tag under .SH sh (and .SS ss)."""
        out = set()
        for tsh, tss, _, text in self.tags:
            if (sh is None or tsh == sh) and (ss is None or tss == ss):
                out.update(t.strip("[]()\"'.") for t in re.split(r"[\s,|]+", text))
        return out

    def subsections(self, sh):
        return {ss for s, ss, _ in self.lines if s == sh and ss}


def tokens(text):
    return [t for t in re.split(r"[\s,]+", text.strip()) if t]


pages = {p: Page(os.path.join(man_dir, p)) for p in ("herdd.8", "herdctl.1", "herd.json.5")}

# ---- (a) config keys, from herdd's own messages ---------------------------------

def check(cfg):
    f = os.path.join(tmp, "probe.json")
    with open(f, "w") as fh:
        json.dump(cfg, fh)
    p = subprocess.run([herdd, "--check", "-c", f], capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def expected_keys(cfg, prefix):
    """The keys herdd names when refusing BOGUS at prefix: a list, or None
    when it refuses the key without naming what it expected."""
    rc, out = check(cfg)
    m = re.search(r"(?:^|: )" + re.escape(prefix) + BOGUS +
                  r": unknown key(?: \(expected ([^)]*)\))?", out, re.M)
    if rc != 1 or m is None:
        raise SystemExit("herdd --check did not refuse %s%s as an unknown key: rc %d, %s"
                         % (prefix, BOGUS, rc, out.strip()))
    if m.group(1) is None:
        return None
    listed = re.sub(r"\s*\bor a common key$", "", m.group(1).strip())
    if listed == "only common keys":
        return []
    return [k for k in re.split(r",\s*|\s+or\s+", listed) if k]


def c_function(path, name):
    text = open(os.path.join(src, path), encoding="utf-8").read()
    m = re.search(r"^[^\n;]*\b" + name + r"\([^;{]*\)\s*\{(.*?)^\}", text, re.M | re.S)
    if m is None:
        raise SystemExit("%s: no function %s (the test reads its keys there)" % (path, name))
    return m.group(1)


def keys_compared(path, function):
    """Keys a parser compares with strcmp(key, "...")."""
    return sorted(set(re.findall(r'strcmp\(key, "([A-Za-z0-9_]+)"\)', c_function(path, function))))


def c_string_array(path, name):
    text = open(os.path.join(src, path), encoding="utf-8").read()
    m = re.search(re.escape(name) + r"\[\]\s*=\s*\{(.*?)\};", text, re.S)
    if m is None:
        raise SystemExit("%s: no array %s (the test reads the common keys there)" % (path, name))
    return re.findall(r'"([^"]+)"', m.group(1))


# Levels whose refusal names no keys, and where their keys are defined.
# (Ask the owner to list them in the message instead; until then the test
# reads the source.)
SOURCE_FALLBACK = {
    "kind jobs": ("jobs/config.c", "jobs_config_parse"),
    "jobs types.T": ("jobs/config.c", "parse_type"),
}


def level_keys(level, cfg, prefix):
    keys = expected_keys(cfg, prefix)
    if keys is None:
        if level not in SOURCE_FALLBACK:
            raise SystemExit("herdd refuses an unknown key at %s (%s) without naming the keys "
                             "it expects: name them in the message, or teach this test where "
                             "they are defined" % (level, prefix))
        path, fn = SOURCE_FALLBACK[level]
        keys = keys_compared(path, fn)
        notes.append("%s: herdd's message names no keys; read from %s %s(): %s"
                     % (level, path, fn, " ".join(keys)))
    elif not keys and not level.startswith("kind "):
        raise SystemExit("no keys found for %s in herdd's message" % level)
    return keys


cfgdoc = pages["herd.json.5"]
n_keys = 0


def documented(keys, qualify, sh, ss=None, what=""):
    global n_keys
    have = cfgdoc.tag_tokens(sh, ss)
    for k in keys:
        n_keys += 1
        names = qualify(k)
        if not any(n in have for n in names) and not any(
                re.fullmatch(n, t) for n in names if "\\" in n for t in have):
            error("herd.json.5: %s key %s is not a paragraph tag under %s%s"
                  % (what, names[0], sh, " / " + ss if ss else ""))


def W(extra):  # one worker, with extra keys
    w = {"name": "w"}
    w.update(extra)
    return {"workers": [w]}


documented(level_keys("top level", {BOGUS: 1}, ""), lambda k: [k], "TOP-LEVEL KEYS", what="top-level")
documented(level_keys("bus", {"bus": {BOGUS: 1}}, "bus."), lambda k: ["bus." + k], "BUS", what="bus")
documented(level_keys("bus.tcp", {"bus": {"tcp": {BOGUS: "tcp://:1"}}}, "bus.tcp."),
           lambda k: ["bus.tcp." + k], "BUS", what="bus.tcp")
documented(level_keys("bus.tls", {"bus": {"tls": {BOGUS: 1}}}, "bus.tls."),
           lambda k: ["bus.tls." + k], "BUS", what="bus.tls")
documented(level_keys("http", {"http": {BOGUS: 1}}, "http."), lambda k: ["http." + k], "HTTP",
           what="http")

# The common keys: every kind's refusal says "or a common key" without them.
common = c_string_array("workers/runtime.c", "worker_common_keys")
notes.append("common worker keys: kinds' messages say \"or a common key\"; read from "
             "workers/runtime.c worker_common_keys[]: " + " ".join(common))
documented(common, lambda k: [k], "WORKERS", "Common worker keys", what="common worker")
for parent in ("backoff", "intensity"):
    documented(level_keys(parent, W({"kind": "process", "argv": ["true"], parent: {BOGUS: 1}}),
                          "workers[0].%s." % parent),
               lambda k, p=parent: ["%s.%s" % (p, k)], "WORKERS", "Common worker keys",
               what="common worker")

rc, out = check(W({"kind": BOGUS}))
m = re.search(r"workers\[0\]\.kind: expected one of (.*)$", out, re.M)
if m is None:
    raise SystemExit("cannot read the kinds from herdd: " + out)
kinds = [k for k in re.split(r",\s*|\s+or\s+", m.group(1).strip()) if k]
for kind in kinds:
    if kind not in cfgdoc.subsections("WORKER KINDS"):
        error("herd.json.5: kind %s has no .SS %s under WORKER KINDS" % (kind, kind))
        continue
    documented(level_keys("kind " + kind, W({"kind": kind, BOGUS: 1}), "workers[0]."),
               lambda k: [k], "WORKER KINDS", kind, what=kind)

# Nested objects of a kind.
documented(level_keys("webhook retry_backoff",
                      W({"kind": "webhook", "subscribe": ["a"], "url": "http://127.0.0.1:9/",
                         "retry_backoff": {BOGUS: 1}}), "workers[0].retry_backoff."),
           lambda k: ["retry_backoff." + k], "WORKER KINDS", "webhook", what="webhook")
documented(level_keys("jobs types.T",
                      W({"kind": "jobs", "types": {"t": {"argv": ["true"], BOGUS: 1}}}),
                      "workers[0].types.t."),
           lambda k: ["types.T." + k, r"types\.[A-Za-z_-]+\." + k], "WORKER KINDS", "jobs",
           what="jobs")

# ---- (b) herdctl's commands and options, from its --help -----------------------------

def run_help(argv):
    p = subprocess.run(argv + ["--help"], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit("%s --help: exit %d: %s" % (" ".join(argv), p.returncode, p.stderr))
    return p.stdout


def block(text, title):
    """The lines of `title:` up to the next blank line."""
    lines, on = [], False
    for line in text.split("\n"):
        if line.rstrip() == title + ":":
            on = True
        elif on and not line.strip():
            break
        elif on:
            lines.append(line)
    return lines


def entries(lines):
    """`  name  ...` lines (two spaces, then a word): the names."""
    return [m.group(1) for m in (re.match(r"  ([a-z][a-z0-9-]*)(\s|$)", l) for l in lines) if m]


def options_column(lines):
    """Options in the left column of an `Options:` block."""
    out = []
    for l in lines:
        left = re.split(r"(?<=\S)\s{2,}", l.strip(), maxsplit=1)[0] if l.strip().startswith("-") else ""
        out += re.findall(r"(?<![\w-])(--?[A-Za-z][A-Za-z0-9-]*)", left)
    return out


def options_named(text):
    return sorted(set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", text)) - {"--help"})


ctl = pages["herdctl.1"]
top = run_help([herdctl])
commands = entries(block(top, "Commands"))
if len(commands) < 5:
    raise SystemExit("cannot read the commands of herdctl --help:\n" + top)
global_opts = options_column(block(top, "Options"))
have = ctl.tag_tokens("OPTIONS")
for o in global_opts:
    if o not in have:
        error("herdctl.1: global option %s is not a paragraph tag under OPTIONS" % o)

# Paragraphs of COMMANDS whose tag starts with a command: from the tag to
# the next such tag (nested option paragraphs belong to their command).
cmd_tags = [(i, tokens(t)) for sh, ss, i, t in ctl.tags
            if sh == "COMMANDS" and tokens(t) and tokens(t)[0] in commands]


def region(words):
    for n, (i, toks) in enumerate(cmd_tags):
        if toks[:len(words)] == words:
            end = cmd_tags[n + 1][0] if n + 1 < len(cmd_tags) else len(ctl.lines)
            return " ".join(t for sh, ss, t in ctl.lines[i:end] if sh == "COMMANDS")
    return None


leaves = []
for c in commands:
    text = run_help([herdctl, c])
    subs = entries(block(text, "Subcommands"))
    if subs:
        leaves += [([c, s], run_help([herdctl, c, s])) for s in subs]
    else:
        leaves.append(([c], text))
n_opts = 0
for words, text in leaves:
    r = region(words)
    if r is None:
        error("herdctl.1: \"%s\" is not the start of a paragraph tag under COMMANDS"
              % " ".join(words))
        continue
    for o in options_named(text):
        n_opts += 1
        if not re.search(r"(?<![\w-])" + re.escape(o) + r"(?![\w-])", r):
            error("herdctl.1: option %s of \"herdctl %s\" is not in its paragraph"
                  % (o, " ".join(words)))

d = pages["herdd.8"]
herdd_opts = options_column(block(run_help([herdd]), "Options"))
if len(herdd_opts) < 4:
    raise SystemExit("cannot read the options of herdd --help")
have = d.tag_tokens("OPTIONS")
for o in herdd_opts:
    if o not in have:
        error("herdd.8: option %s is not a paragraph tag under OPTIONS" % o)


def getenvs(dirs, files=()):
    names = set()
    paths = [os.path.join(src, f) for f in files]
    for dname in dirs:
        for root, _, fs in os.walk(os.path.join(src, dname)):
            paths += [os.path.join(root, f) for f in fs if f.endswith(".c")]
    for p in paths:
        names.update(re.findall(r'\bgetenv\("([A-Za-z_][A-Za-z0-9_]*)"\)',
                                open(p, encoding="utf-8", errors="replace").read()))
    return sorted(names)


herdd_env = getenvs(["base", "bus", "supervisor", "workers", "catalog", "jobs"])
have = d.tag_tokens("ENVIRONMENT")
for v in herdd_env:
    if v not in have:
        error("herdd.8: environment variable %s (read by herdd) is not a tag under ENVIRONMENT" % v)
ctl_env = getenvs(["cli"], ["bus/client.c"])
have = ctl.tag_tokens("ENVIRONMENT")
for v in ctl_env:
    if v not in have:
        error("herdctl.1: environment variable %s (read by herdctl) is not a tag under "
              "ENVIRONMENT" % v)

# The JSON examples of herd.json.5 are configurations herdd accepts.
raw = open(os.path.join(man_dir, "herd.json.5"), encoding="utf-8").read()
examples = re.findall(r"^\.EX\n(\{.*?)^\.EE$", raw.split("\n.SH EXAMPLES", 1)[-1], re.M | re.S)
if not examples:
    error("herd.json.5: no JSON example under EXAMPLES")
for n, ex in enumerate(examples):
    try:
        cfg = json.loads(unescape(ex))
    except ValueError as e:
        error("herd.json.5: example %d is not JSON: %s" % (n + 1, e))
        continue
    rc, out = check(cfg)
    if rc != 0:
        error("herd.json.5: herdd --check refuses example %d: %s" % (n + 1, out.strip()))

for n in notes:
    print("note: " + n)
if errors:
    print("%d thing(s) missing from the man pages" % len(errors), file=sys.stderr)
    sys.exit(1)
print("PASS: %d config keys (%d kinds), %d herdctl commands and subcommands with %d options, "
      "%d herdd options, %d + %d environment variables: all documented; %d examples valid"
      % (n_keys, len(kinds), len(leaves), n_opts, len(herdd_opts), len(herdd_env), len(ctl_env),
         len(examples)))
PY

# (c) Each page renders without a warning.
if command -v groff >/dev/null 2>&1; then
    for p in herdd.8 herdctl.1 herd.json.5; do
        groff -man -Tutf8 -ww -z "$MAN_DIR/$p" >"$T/groff.out" 2>&1 ||
            fail "groff -man failed on $p: $(cat "$T/groff.out")"
        [ -s "$T/groff.out" ] && fail "groff -man -ww warns on $p: $(cat "$T/groff.out")"
    done
    pass "the three pages render with groff -man -ww, no warnings"
else
    echo "SKIP: groff is not installed: the pages' rendering is not checked"
fi
if command -v mandoc >/dev/null 2>&1; then
    mandoc -Tlint -W warning "$MAN_DIR"/herdd.8 "$MAN_DIR"/herdctl.1 "$MAN_DIR"/herd.json.5 \
        >"$T/mandoc.out" 2>&1 || fail "mandoc -Tlint: $(cat "$T/mandoc.out")"
    pass "mandoc -Tlint finds nothing to warn about"
fi
pass "the man pages document every config key, command, option and variable"
