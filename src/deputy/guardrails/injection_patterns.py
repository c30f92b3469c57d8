"""The phrase lists behind the prompt-injection heuristics, by signal, in English, Spanish,
French, German and Portuguese (plus Italian where it was cheap). Each signal has a weight: the
probability-like strength of one match on its own. Patterns are matched case-insensitively on
text whose accents are kept; where accents are often dropped the pattern accepts both."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Signal = Literal[
    "instruction_override",
    "role_marker",
    "persona_switch",
    "prompt_leak",
    "jailbreak",
    "pre_authorisation",
    "tool_invocation",
    "authority_claim",
    "hidden_text",
    "encoded_blob",
]


@dataclass(frozen=True, slots=True)
class SignalSpec:
    signal: Signal
    weight: float
    tool_output_weight: float
    """Weight when the text is a tool's output: instructions there are never legitimate."""
    patterns: tuple[re.Pattern[str], ...]


def _compile(*patterns: str, flags: int = re.IGNORECASE) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, flags) for p in patterns)


_PREVIOUS = r"(?:previous|prior|above|earlier|preceding|original|initial|system|all|any|your)"
_RULES = r"(?:instructions?|rules|prompts?|directions|guidelines|directives|policies|policy)"

SIGNALS: tuple[SignalSpec, ...] = (
    SignalSpec(
        "instruction_override",
        0.9,
        0.95,
        _compile(
            rf"\b(?:ignore|disregard|forget|skip|bypass|override|drop)\b(?:\s+\w+){{0,3}}?\s+"
            rf"{_PREVIOUS}\s+(?:\w+\s+)?{_RULES}",
            rf"\b(?:ignore|disregard|forget|override)\s+(?:the|your|these|those|my)\s+{_RULES}",
            r"\bforget (?:everything|all) (?:you(?:'ve| have)? (?:been told|learned)|above)",
            r"\b(?:new|updated|real|actual) (?:system )?instructions?\s*[:\-]",
            r"\bfrom now on,? (?:you|your|ignore|always|never|respond|answer|act)\b",
            r"\byour (?:new|real|only) (?:task|goal|instructions?|purpose) (?:is|are)\b",
            # es
            r"\bignora(?:r|d)?\b(?:\s+\w+){0,3}?\s+(?:las\s+)?instrucciones"
            r"(?:\s+(?:anteriores|previas|del sistema))?",
            r"\bolvida(?:r)? (?:todo|todas? (?:las|tus) instrucciones|tus instrucciones"
            r"|las instrucciones)",
            r"\bnuevas instrucciones\s*:",
            r"\ba partir de ahora,? (?:eres|debes|vas a|ignora|responde)",
            # fr
            r"\bignore[zr]?\b(?:\s+\w+){0,3}?\s+(?:les\s+)?(?:instructions|consignes|règles)"
            r"(?:\s+(?:précédentes|precedentes|antérieures|anterieures))?",
            r"\boublie[zr]? (?:tout|toutes (?:les|tes|vos) instructions|tes instructions"
            r"|vos instructions|les instructions)",
            r"\bnouvelles instructions\s*:",
            r"\b(?:à|a) partir de maintenant,? (?:tu|vous|ignore|réponds|reponds)",
            # de
            r"\bignorier(?:e|en sie|t)?\b(?:\s+\w+){0,3}?\s+(?:anweisungen|instruktionen|regeln"
            r"|vorgaben)",
            r"\bvergiss (?:alle|deine|die|alles)\b(?:\s+\w+){0,2}?\s*"
            r"(?:anweisungen|regeln|vorgaben|instruktionen)\b",
            r"\bneue anweisungen\s*:",
            r"\bab (?:jetzt|sofort),? (?:bist du|musst du|ignorierst du|antwortest du)",
            # pt
            r"\bignor(?:e|a|ar)\b(?:\s+\w+){0,3}?\s+(?:as\s+)?instruç(?:ões|oes)"
            r"(?:\s+anteriores)?",
            r"\besque(?:ça|ca|cer) (?:tudo|todas as instruç(?:ões|oes)|suas instruç(?:ões|oes)"
            r"|as instruç(?:ões|oes))",
            r"\bnovas instruç(?:ões|oes)\s*:",
            r"\ba partir de agora,? (?:você|voce|tu) (?:é|e|deve|vai)",
            # it
            r"\bignora (?:tutte )?le istruzioni (?:precedenti|di sistema)",
        ),
    ),
    SignalSpec(
        "role_marker",
        0.9,
        0.95,
        (
            *_compile(
                r"<\|\s*(?:im_start|im_end|system|assistant|user|endoftext|eot_id"
                r"|start_header_id)\s*\|>",
                r"\[/?INST\]|<<\s*/?SYS\s*>>",
                r"^\s*#{2,}\s*(?:system|instruction|instructions|assistant|new rules)\b",
                r"</?\s*(?:system|tool_result|instructions?|assistant)\s*>",
                r"^\s*(?:system|assistant)\s*(?:prompt)?\s*:\s*\S",
                r"\bBEGIN (?:SYSTEM|ADMIN) (?:PROMPT|MESSAGE|INSTRUCTIONS)\b",
                flags=re.IGNORECASE | re.MULTILINE,
            ),
        ),
    ),
    SignalSpec(
        "persona_switch",
        0.6,
        0.8,
        _compile(
            r"\byou are (?:now|no longer)\b",
            r"\b(?:act|behave|respond) as (?:if you (?:were|are) )?(?:an? )?(?:unrestricted|"
            r"unfiltered|uncensored|jailbroken|different|evil|new)\b",
            r"\bpretend (?:to be|you are|that you are) (?:an? )?(?:\w+ ){0,2}"
            r"(?:ai|assistant|model|bot|admin|developer|system)\b",
            r"\b(?:roleplay|role-play) as\b",
            r"\b(?:ahora eres|eres ahora|desde ahora eres)\b",
            r"\b(?:tu es|vous êtes|vous etes) (?:maintenant|désormais|desormais)\b",
            r"\bdu bist (?:jetzt|nun|ab sofort)\b",
            r"\b(?:agora você é|você agora é|voce agora e|agora voce e|agora és)\b",
        ),
    ),
    SignalSpec(
        "prompt_leak",
        0.8,
        0.9,
        _compile(
            r"\b(?:reveal|show|print|repeat|output|display|tell me|give me|what (?:is|are|were))"
            r"\b(?:\s+\w+){0,2}?\s+(?:your|the) (?:system|initial|hidden|original|secret|full)"
            r"\s+(?:prompt|instructions|message|rules|configuration)",
            r"\b(?:repeat|print|output) (?:everything|all|the text) (?:above|before this)\b",
            r"\bsystem prompt\b",
            r"\b(?:muestra|revela|dime|repite)(?:me)? (?:tu|tus|el|las) (?:prompt|instrucciones)"
            r"(?: (?:del sistema|iniciales|ocultas))?",
            r"\b(?:révèle|revele|montre|affiche|répète|repete)[sz]?(?:-moi)? (?:ton|tes|le|les|vos"
            r"|votre) (?:prompt|instructions|consignes)",
            r"\bzeig(?:e)?(?: mir)? (?:deinen|den|deine|die) (?:system ?prompt|anweisungen"
            r"|instruktionen)",
            r"\b(?:mostre|revele|diga)(?:-me)? (?:o seu|seu|o|as suas|suas|as) (?:prompt"
            r"|instruç(?:ões|oes))",
            r"\bprompt (?:del sistema|du système|du systeme|do sistema)\b",
        ),
    ),
    SignalSpec(
        "jailbreak",
        0.8,
        0.9,
        _compile(
            r"\b(?:developer|debug|god|admin|maintenance|unrestricted|jailbreak)[ -]?mode\b",
            r"\bDAN\b(?=[^.]{0,60}\b(?:anything|mode|jailbreak|now|prompt)\b)",
            r"\bdo anything now\b",
            r"\bjailbr(?:oken|eak)\b",
            r"\b(?:without|no|ignore (?:all|your)) (?:any )?(?:restrictions|limitations|filters"
            r"|guardrails|safety (?:rules|filters)|content polic(?:y|ies))\b",
            r"\b(?:modo (?:desarrollador|desenvolvedor|dios|sin restricciones|sem restrições))",
            r"\bmode (?:développeur|developpeur|sans restriction)s?\b",
            r"\b(?:entwicklermodus|ohne (?:einschränkungen|einschraenkungen|filter))\b",
        ),
    ),
    SignalSpec(
        "pre_authorisation",
        0.7,
        0.95,
        _compile(
            r"\bthe (?:customer|user|client|account holder) (?:has )?(?:already |previously )?"
            r"(?:confirmed|approved|authori[sz]ed|agreed|consented)\b",
            r"\b(?:confirmation|approval|authori[sz]ation|consent) (?:is|was|has been|have been)"
            r" (?:already )?(?:given|granted|obtained|received|provided|confirmed)\b",
            r"\b(?:pre-?approved|pre-?authori[sz]ed|pre-?confirmed|already been (?:approved"
            r"|authori[sz]ed))\b",
            r"\bapproved for an? (?:full )?[$€£]?\s?\d[\d,.]*\s?(?:usd|eur|dollars?)? ?refund\b",
            r"\b(?:skip|bypass|without|no need for|don't ask for|do not ask for|no)"
            r" (?:the |any |further |additional )?(?:customer )?(?:confirmation|verification"
            r"|approval)\b",
            r"\b(?:el cliente|la cliente) ya (?:ha )?(?:confirmado|aprobado|autorizado)",
            r"\bsin (?:pedir |solicitar )?(?:confirmación|confirmacion|verificación)",
            r"\ble client a (?:déjà|deja) (?:confirmé|confirme|approuvé|approuve|autorisé)",
            r"\bsans (?:demander (?:de )?)?confirmation\b",
            r"\bder kunde hat (?:bereits|schon) (?:bestätigt|bestaetigt|zugestimmt|genehmigt)",
            r"\bohne (?:rückfrage|rueckfrage|bestätigung|bestaetigung)\b",
            r"\bo cliente j(?:á|a) (?:confirmou|aprovou|autorizou)",
            r"\bsem (?:pedir )?confirmaç(?:ão|ao)\b",
        ),
    ),
    SignalSpec(
        "tool_invocation",
        0.6,
        0.9,
        _compile(
            r"\b(?:call|invoke|execute|run|trigger|use)\s+(?:the\s+)?(?:tool\s+|function\s+)?"
            r"`?[a-z]+(?:_[a-z0-9]+)+`?(?:\(\))?\s*(?:tool|function)?\s*"
            r"(?:now|immediately|right away|at once|without)",
            r"\b(?:call|invoke|execute|run)\s+(?:the\s+)?(?:tool|function)\s+`?[a-z_]+`?\b",
            r"\b[a-z]+(?:_[a-z0-9]+)+\s*\(\s*[a-z_]+\s*=",
            r"\b(?:llama|ejecuta|invoca|appelle|exécute|execute|rufe|führe|fuehre|chame|execute)"
            r"\s+(?:la |a |le |die |o )?(?:función |funcion |fonction |funktion |função |funcao )?"
            r"`?[a-z]+(?:_[a-z0-9]+)+`?",
        ),
    ),
    SignalSpec(
        "authority_claim",
        0.5,
        0.8,
        _compile(
            r"\bI am (?:the|an|your) (?:admin(?:istrator)?|developer|system|supervisor|ceo)"
            r" (?:of|here|and)\b",
            r"\b(?:admin|administrator|developer|system|security) (?:override|command|notice"
            r"|message)\s*:",
            r"\bauthori[sz]ation code\s*:",
            r"\b(?:this is|message from) (?:the )?(?:system|administrator|openai|anthropic)\b",
        ),
    ),
)

ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff]")
BIDI_CONTROL = re.compile("[\u202a-\u202e\u2066-\u2069]")
TAG_CHARACTERS = re.compile("[\U000e0000-\U000e007f]")
BASE64_BLOB = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{48,}={0,2}(?![A-Za-z0-9+/=])")
HIDDEN_TEXT_WEIGHT = (0.6, 0.8)
ENCODED_BLOB_WEIGHT = (0.4, 0.5)
