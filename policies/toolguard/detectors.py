"""The scanners. Each finds ``Finding``s in text; ``mask`` replaces what the maskable ones found.

Categories:
- ``hidden_instructions``: tags and markers that smuggle instructions to the model (``<IMPORTANT>``…)
- ``model_imperative``: sentences aimed at the model rather than describing the tool
- ``sensitive_path``: credentials and client configuration files (``~/.ssh``, ``.env``, ``mcp.json``…)
- ``exfiltration``: markdown images or URLs that carry data out in their query
- ``encoded_blob``: long base64/hex runs
- ``hidden_characters``: zero-width, bidi-control and Unicode tag characters, ANSI escapes
- ``shadowing``: a definition that names another connector's tools
- ``secret``: cloud keys, tokens, private keys, connection strings with passwords, JWTs (maskable)
- ``pii``: e-mail addresses, phone numbers, payment card numbers that pass Luhn (maskable)
- ``prompt_injection``: instructions to the model inside a tool's result
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import re2

MAX_SNIPPET = 80
# Scanning stops collecting after this many findings per scanner and text (the verdict is already clear).
MAX_FINDINGS = 20


@dataclass(frozen=True, slots=True)
class Finding:
    scanner: str  # "definition", "secrets", "pii", "injection", "hidden"
    category: str
    rule: str
    score: float
    start: int
    end: int
    snippet: str

    def as_dict(self) -> dict:
        return {
            "scanner": self.scanner,
            "category": self.category,
            "rule": self.rule,
            "score": self.score,
            "snippet": self.snippet,
        }


class RuleList(list):
    """Compiled rules plus one RE2 set over all of them: a single pass over the text says which rules can
    match at all, so clean text costs one scan instead of one per rule."""

    def __init__(self, rules: Iterable[tuple[str, str, float]]) -> None:
        rules = list(rules)
        super().__init__((name, re2.compile(pattern), score) for name, pattern, score in rules)
        self.prefilter = re2.Set.SearchSet(re2.Options())
        for _, pattern, _ in rules:
            self.prefilter.Add(pattern)
        self.prefilter.Compile()

    def candidates(self, text: str) -> list[tuple[str, object, float]]:
        hits = self.prefilter.Match(text)
        return [self[i] for i in sorted(hits)] if hits else []


def _compile(rules: Iterable[tuple[str, str, float]]) -> RuleList:
    return RuleList(rules)


HIDDEN_CHARS = re2.compile(
    "[\\x{200B}-\\x{200F}\\x{202A}-\\x{202E}\\x{2060}-\\x{2064}\\x{2066}-\\x{2069}\\x{FEFF}\\x{E0000}-\\x{E007F}]"
    "|\\x1b\\[[0-9;]*[A-Za-z]|\\x1b\\][^\\x07]*\\x07"
)

_IGNORE_PREVIOUS = (
    r"(?i)\b(ignore|disregard|forget|override|bypass|skip)\b[^.\n]{0,40}\b(previous|prior|above|earlier|all|any|"
    r"system|your|the)\b[^.\n]{0,30}\b(instructions?|prompts?|rules|directions|guidelines|context|messages?|"
    r"content policy|policy|policies|safety checks)"
    r"|(?i)\b(disregard|forget|ignore)\s+(everything|all)\s+(above|before|we discussed|you were told)"
    r"|(?i)\bignore\s+the\s+user\b"
)
_MULTILINGUAL_IGNORE = (
    r"(?i)\b(vergiss alles|keine regeln|uneingeschr\x{00E4}nkt|sin restricciones|senza restrizioni|sans restrictions|"
    r"modo desarrollador|modalit\x{00E0} sviluppatore|mode d\x{00E9}veloppeur|entwicklermodus)\b"
    r"|(?i)(verrate|r\x{00E9}v\x{00E8}le|revela|rivela)\w*\s[^.\n]{0,30}(systemanweisung\w*|instructions? syst\x{00E8}me|"
    r"instrucciones del sistema|istruzioni di sistema)"
    r"|(?i)(neue anweisungen|nouvelles instructions|nuevas instrucciones|nuove istruzioni)\s*:"
    r"|(?i)(sicherheitsrichtlinien|r\x{00E8}gles de s\x{00E9}curit\x{00E9}|reglas de seguridad|linee guida di sicurezza)"
    r"[^.\n]{0,40}(nicht gelten|ne s.appliquent pas|no aplican|non valgono)"
    r"|(?i)(ignorier\w*|vergiss\w*|missachte\w*)[^.\n]{0,40}(anweisung\w*|instruktion\w*|regeln|vorgaben)"
    r"|(ignor\w+|olvid\w+|oublie\w*|dimentic\w+)[^.\n]{0,40}(instruc\w+|istruzion\w+|consignes|r[eè]gles|regole)"
)

DEFINITION_RULES = {
    "hidden_instructions": _compile(
        [
            (
                "important_tag",
                r"(?i)<\s*/?\s*(important|system|instructions?|secret|hidden|admin|prompt|critical)\b[^>]{0,40}>",
                0.9,
            ),
            ("inst_marker", r"(?i)\[\s*/?\s*(INST|SYSTEM)\s*\]|<<\s*SYS\s*>>|<\|im_start\|>|<\|system\|>", 0.9),
            ("html_comment", r"<!--[^>]{0,1000}-->", 0.6),
        ]
    ),
    "model_imperative": _compile(
        [
            ("ignore_previous", _IGNORE_PREVIOUS, 0.9),
            (
                "do_not_tell",
                r"(?i)\b(do not|don'?t|never)\s+(tell|inform|mention|reveal|show|notify|alert)\b[^.\n]{0,30}\b(the\s+)?(user|human|them)\b",
                0.9,
            ),
            (
                "before_using",
                r"(?i)\b(before|prior to)\s+(using|calling|invoking|running)\s+(this|any|the)\b[^.\n]{0,20}\btools?\b[^.\n]{0,80}\b(must|should|first|read|call|send|pass|include)\b",
                0.8,
            ),
            (
                "you_must_model",
                r"(?i)\b(as an? (ai|assistant|llm|language model)|dear (ai|assistant|model)|attention (ai|assistant|model))\b",
                0.7,
            ),
            (
                "always_call",
                r"(?i)\b(always|must|should)\s+(first\s+)?(call|use|invoke|run)\s+(the\s+)?[`'\"]?[a-z0-9_.-]+[`'\"]?\s+(tool\s+)?(first|before|instead)\b",
                0.7,
            ),
            (
                "pass_contents",
                r"(?i)\b(pass|include|send|put|add|append)\b[^.\n]{0,40}\b(contents?|content of|text of)\b[^.\n]{0,40}\b(as|in|into|to)\b[^.\n]{0,20}\b(parameter|argument|field|sidenote|notes?)\b",
                0.8,
            ),
            (
                "otherwise_fail",
                r"(?i)\botherwise\b[^.\n]{0,40}\b(the tool|this tool|it)\s+will\s+(not work|fail|crash|break)\b",
                0.6,
            ),
        ]
    ),
    "sensitive_path": _compile(
        [
            ("ssh", r"(?i)~?/?\.ssh\b|\bid_(rsa|dsa|ecdsa|ed25519)\b", 0.8),
            ("dotenv", r"(?i)(^|[\s'\"`(/])\.env(\.[a-z]+)?\b", 0.7),
            ("mcp_config", r"(?i)\b(mcp\.json|claude_desktop_config\.json|\.cursor/mcp|mcp_settings\.json)\b", 0.9),
            (
                "cloud_credentials",
                r"(?i)\.aws/credentials|\.config/gcloud|\.azure/|\.kube/config|\.docker/config\.json|\.netrc|\.npmrc|\.pypirc",
                0.8,
            ),
            ("system_secrets", r"(?i)/etc/(passwd|shadow|sudoers)\b|\.bash_history|\.gnupg|keychain", 0.7),
        ]
    ),
    "exfiltration": _compile(
        [
            ("markdown_image", r"!\[[^\]]{0,200}\]\(\s*https?://[^)\s]{1,500}[?&][^)\s]{0,500}=", 0.9),
            ("url_placeholder", r"(?i)https?://[^\s\"'<>]{1,300}[?&][a-z0-9_]{1,40}=\s*(\{|\$\{|<|\[)[^\s]{0,60}", 0.8),
            ("send_to_url", r"(?i)\b(send|post|upload|forward|exfiltrate|transmit)\b[^.\n]{0,60}\bhttps?://", 0.7),
        ]
    ),
    "encoded_blob": _compile(
        [
            ("base64_blob", r"[A-Za-z0-9+/]{160,}={0,2}", 0.6),
            ("hex_blob", r"\b[0-9a-fA-F]{160,}\b", 0.6),
        ]
    ),
}

SECRET_RULES = _compile(
    [
        ("aws_access_key", r"\b(AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b", 0.95),
        ("aws_secret_key", r"(?i)aws.{0,20}(secret|private).{0,20}['\"=:\s]([A-Za-z0-9/+]{40})\b", 0.9),
        ("github_token", r"\b(gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b", 0.95),
        ("gitlab_token", r"\bglpat-[A-Za-z0-9_-]{20,}\b", 0.95),
        ("slack_token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b", 0.95),
        ("stripe_key", r"\b[sr]k_(live|test)_[A-Za-z0-9]{16,}\b", 0.95),
        ("google_api_key", r"\bAIza[0-9A-Za-z_-]{35}\b", 0.9),
        ("openai_key", r"\bsk-(proj-|live-)?[A-Za-z0-9_-]{32,}\b", 0.85),
        ("anthropic_key", r"\bsk-ant-[A-Za-z0-9_-]{32,}\b", 0.95),
        ("runlayer_key", r"\brl_[A-Za-z0-9_-]{40,}\b", 0.9),
        ("private_key", r"-----BEGIN (RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY( BLOCK)?-----", 0.99),
        ("jwt", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b", 0.85),
        (
            "connection_string",
            r"(?i)\b(postgres(ql)?|mysql|mariadb|mongodb(\+srv)?|redis|rediss|amqps?|mssql|sqlserver)://[^\s:/@]{1,100}:[^\s@/]{1,200}@[^\s/]{1,200}",
            0.9,
        ),
        ("bearer_header", r"(?i)\bauthorization\s*[:=]\s*['\"]?bearer\s+[A-Za-z0-9._~+/-]{20,}", 0.8),
    ]
)

PII_RULES = _compile(
    [
        ("email", r"\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,24}\b", 0.7),
        (
            "phone",
            r"(?:\+\d{1,3}[\s.-]?)?\(?\b\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b|\+\d{2}[\s.-]?\d{2,4}[\s.-]?\d{3,4}[\s.-]?\d{3,4}\b",
            0.6,
        ),
        ("card_number", r"\b(?:\d[ -]?){12,18}\d\b", 0.9),
    ]
)

INJECTION_RULES = _compile(
    [
        ("ignore_previous", _IGNORE_PREVIOUS, 0.9),
        ("ignore_multilingual", _MULTILINGUAL_IGNORE, 0.85),
        (
            "new_instructions",
            r"(?i)\b(new|updated|real|actual|true)\s+(system\s+)?(instructions?|prompt|directive|orders)\s*(:|are|follow)",
            0.8,
        ),
        (
            "you_are_now",
            r"(?i)\byou\s+(are|will)\s+now\s+(be\s+|act\s+as\s+|an?\s+|in\s+)?[^.\n]{0,40}|\bfrom now on,?\s+you\b",
            0.75,
        ),
        (
            "no_restrictions",
            r"(?i)\b(no|without|free of|ignore( all)?)\s+(restrictions|limits|limitations|filters|guidelines|safety|rules)\b",
            0.75,
        ),
        ("developer_mode", r"(?i)\b(DAN|developer mode|jailbreak|god mode|unrestricted mode|do anything now)\b", 0.8),
        (
            "reveal_prompt",
            r"(?i)\b(reveal|print|show|output|repeat|dump|leak)\b[^.\n]{0,40}\b(system prompt|instructions above|initial prompt|hidden prompt|your prompt)\b",
            0.85,
        ),
        (
            "hidden_tags",
            r"(?i)<\s*/?\s*(important|system|instructions?|admin)\b[^>]{0,40}>|\[\s*/?\s*(INST|SYSTEM)\s*\]|<\|im_start\|>",
            0.85,
        ),
        (
            "tool_redirect",
            r"(?i)\b(call|use|invoke|run|execute)\s+(the\s+)?[`'\"]?[a-z0-9_.-]{2,60}[`'\"]?\s+tool\b[^.\n]{0,60}\b(send|with|and|to)\b",
            0.6,
        ),
        (
            "exfiltrate",
            r"(?i)\b(send|post|upload|forward|email|exfiltrate|transmit|leak)\b[^.\n]{0,60}\b(password|credential|api key|secret|token|database|private|ssh key|conversation|chat history)s?\b",
            0.8,
        ),
        ("markdown_exfil", r"!\[[^\]]{0,200}\]\(\s*https?://[^)\s]{1,500}[?&][^)\s]{0,500}=", 0.85),
        (
            "addressed_to_model",
            r"(?i)\b(note (to|for) (the )?(bot|ai|assistant|model|llm|ai agents?)|(ai|llm) (assistant|agent|system)s? (reading|processing) this|to any ai\b|for ai (coding )?agents|attention,? (ai|assistant|llm)|important for the assistant)\b",
            0.8,
        ),
        (
            "system_note",
            r"(?m)^\s*(SYSTEM( NOTE| UPDATE| MESSAGE)?|IMPORTANT SYSTEM UPDATE|OVERRIDE|ADMIN NOTE)\s*:",
            0.75,
        ),
        (
            "call_tool_in_result",
            r"(?i)\b(call|use|invoke|run|execute)\s+`?[a-z][a-z0-9]*_[a-z0-9_]+`?\s+(on|to|with|tool|before|and)\b",
            0.7,
        ),
        (
            "reveal_instructions",
            r"(?i)\b(print|repeat|output|tell me|show|reveal|reproduce)\b[^.\n]{0,40}\b(initial|exact|system|original|operating|hidden)\s+(instructions|prompt|message)s?\b|\brepeat the words above\b|\beverything in your context\b",
            0.8,
        ),
        (
            "decode_and_follow",
            r"(?i)\bdecode\b[^.\n]{0,60}\b(follow|do|execute|obey|run)\b|\b(rot13|base64)\b[^.\n]{0,40}\b(execute|follow|do what)\b",
            0.8,
        ),
        (
            "output_tampering",
            r"(?i)\b(append|add|include|insert)\b[^.\n]{0,60}\b(token|code|string|phrase)\b[^.\n]{0,60}\b(reply|response|answer|summary|output|report)s?\b",
            0.65,
        ),
        (
            "memory_poisoning",
            r"(?i)\b(save|store|write|add)\b[^.\n]{0,40}\b(long-term )?memory\b|\bremember for all future\b|\bin every future (reply|response|answer|report)\b",
            0.7,
        ),
        (
            "safety_off",
            r"(?i)\b(safety|security|content)\s+(checks?|protocols?|polic(y|ies)|filters?|restrictions)\s+(are\s+|is\s+)?(disabled|off|suspended|lifted|do(es)? not apply|don.t apply)|\bskip all safety\b|\bno content policy\b|\buncensored\b|\bexempt from the usual restrictions\b|\bdisregard the content policy\b|\byour rules have changed\b|\bsupersedes all prior\b",
            0.75,
        ),
        (
            "role_marker",
            r"(?im)^\s*(assistant|system)\s*:\s|#{2,}\s*end of (the )?(user )?(input|prompt|instructions)|</?thinking>",
            0.65,
        ),
        (
            "email_data_out",
            r"(?i)\b(email|send|forward|mail)\b[^.\n]{0,60}\b(customer list|all (order|customer|user) data|full customer|customer (data|emails)|externally)\b",
            0.75,
        ),
    ]
)


_CAMEL = re2.compile(r"([a-z0-9])([A-Z])")


def _scan(text: str, rules: RuleList, scanner: str, category: str | None = None) -> list[Finding]:
    findings: list[Finding] = []
    for rule, regex, score in rules.candidates(text):
        for match in regex.finditer(text):
            start, end = match.span()
            matched = text[start:end]
            # never keep what a secret or PII scanner found: findings are stored in the audit trail
            snippet = f"{matched[:4]}…({len(matched)} chars)" if scanner in ("secrets", "pii") else _snippet(matched)
            findings.append(Finding(scanner, category or rule, rule, score, start, end, snippet))
            if len(findings) >= MAX_FINDINGS:
                return findings
    return findings


def _snippet(text: str) -> str:
    text = text if len(text) <= MAX_SNIPPET else text[: MAX_SNIPPET - 1] + "…"
    return text.encode("unicode_escape").decode("ascii") if HIDDEN_CHARS.search(text) else text


def luhn_ok(digits: str) -> bool:
    numbers = [int(d) for d in digits if d.isdigit()]
    if not 13 <= len(numbers) <= 19:
        return False
    total = 0
    for i, n in enumerate(reversed(numbers)):
        if i % 2:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def scan_hidden(text: str) -> list[Finding]:
    return [
        Finding("hidden", "hidden_characters", "hidden_characters", 0.9, m.start(), m.end(), _snippet(m.group(0)))
        for m in HIDDEN_CHARS.finditer(text)
    ][:MAX_FINDINGS]


def scan_secrets(text: str) -> list[Finding]:
    return _scan(text, SECRET_RULES, "secrets", "secret")


def scan_pii(text: str) -> list[Finding]:
    findings = []
    for finding in _scan(text, PII_RULES, "pii", "pii"):
        if finding.rule == "card_number" and not luhn_ok(text[finding.start : finding.end]):
            continue
        findings.append(finding)
    return findings


_BLOB = re2.compile(r"[A-Za-z0-9+/=]{24,}|\b[0-9a-fA-F]{32,}\b|\b[A-Z2-7=]{32,}\b")


def _decoded_blobs(text: str) -> list[tuple[int, int, str]]:
    """Base64, base32 and hex runs that decode to readable text (instructions smuggled past the scanners)."""
    import base64
    import binascii

    out = []
    for match in _BLOB.finditer(text[:1_000_000]):
        blob = match.group(0)
        for decode in (
            lambda b: base64.b64decode(b + "=" * (-len(b) % 4), validate=False),
            lambda b: base64.b32decode(b + "=" * (-len(b) % 8)),
            lambda b: binascii.unhexlify(b[: len(b) // 2 * 2]),
        ):
            try:
                raw = decode(blob)
            except (ValueError, binascii.Error):
                continue
            decoded = raw.decode("utf-8", "ignore")
            if len(decoded) >= 12 and sum(ch.isprintable() for ch in decoded) / len(decoded) > 0.95:
                out.append((match.start(), match.end(), decoded))
                break
        if len(out) >= MAX_FINDINGS:
            break
    return out


def scan_injection(text: str) -> list[Finding]:
    findings = _scan(text, INJECTION_RULES, "injection", "prompt_injection") + scan_hidden(text)
    for start, end, decoded in _decoded_blobs(text):
        for inner in _scan(decoded, INJECTION_RULES, "injection", "prompt_injection"):
            findings.append(
                Finding(
                    "injection",
                    "prompt_injection",
                    f"encoded_{inner.rule}",
                    inner.score,
                    start,
                    end,
                    _snippet(text[start:end]),
                )
            )
            break
    return findings


def scan_definition_text(text: str, *, other_tools: Iterable[str] = ()) -> list[Finding]:
    findings: list[Finding] = []
    for category, rules in DEFINITION_RULES.items():
        findings.extend(_scan(text, rules, "definition", category))
    findings.extend(scan_hidden(text))
    for name in other_tools:
        # Only identifier-like names (send_email, getUser): plain words such as "fetch" are ordinary prose.
        identifier = any(sep in name for sep in "_-.") or _CAMEL.search(name) is not None
        if (
            identifier
            and len(name) >= 5
            and re2.search(r"(?i)(^|[^A-Za-z0-9_])" + re2.escape(name) + r"($|[^A-Za-z0-9_])", text)
        ):
            findings.append(Finding("definition", "shadowing", "other_tool_named", 0.7, 0, 0, name))
    return findings


def mask(text: str, findings: Iterable[Finding]) -> str:
    """``text`` with each finding's span replaced by ``[REDACTED:<rule>]`` (overlaps merged)."""
    spans = sorted((f.start, f.end, f.rule) for f in findings if f.end > f.start)
    if not spans:
        return text
    out, cursor = [], 0
    for start, end, rule in spans:
        if start < cursor:
            continue
        out.append(text[cursor:start])
        out.append(f"[REDACTED:{rule}]")
        cursor = end
    out.append(text[cursor:])
    return "".join(out)


def _strings(value, *, keys: bool = False):
    """Every string in a JSON value, dict keys included (as words: ``ignore_all_rules`` → ``ignore all rules``)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str):
                yield _CAMEL.sub(r"\1 \2", key).replace("_", " ").replace("-", " ")
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def scan_tool_definition(tool: dict, *, other_tools: Iterable[str] = ()) -> list[Finding]:
    """Poisoning findings in any field of a tool definition (description, parameter names, enums, defaults…)."""
    findings: list[Finding] = []
    others = [name for name in other_tools if name != tool.get("name")]
    if isinstance(tool.get("name"), str):
        findings.extend(lookalike_names(tool["name"], others))
    for text in _strings(tool):
        findings.extend(scan_definition_text(text, other_tools=others))
        if len(findings) >= MAX_FINDINGS:
            break
    return findings


_CONFUSABLES = str.maketrans(
    {"0": "o", "1": "l", "i": "l", "3": "e", "5": "s", "@": "a", "$": "s", "_": "", "-": "", ".": "", " ": ""}
)


def skeleton(name: str) -> str:
    """A name reduced to what it looks like: NFKC-folded, lower case, look-alike characters merged, separators dropped."""
    import unicodedata

    folded = unicodedata.normalize("NFKC", name).casefold()
    folded = "".join(ch for ch in unicodedata.normalize("NFKD", folded) if not unicodedata.combining(ch))
    return folded.translate(_CONFUSABLES)


def lookalike_names(name: str, other_tools: Iterable[str]) -> list[Finding]:
    """Another connector's tool whose name looks the same but is not (``send_emaiI`` vs ``send_email``)."""
    mine = skeleton(name)
    return [
        Finding("definition", "lookalike_name", "lookalike_name", 0.8, 0, 0, other)
        for other in other_tools
        if other != name and len(mine) >= 4 and skeleton(other) == mine
    ][:MAX_FINDINGS]
