"""Transcripts in every accepted format: Deputy's JSON, STAR dialogues, ABCD conversations,
CSV, "Speaker: text" plain text, WebVTT and SRT."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from deputy.builder.read import read_material
from deputy.builder.read_transcripts import assign_speakers, speaker_role
from deputy.builder.sources import MaterialRef, ReadResult, Transcript
from tests.processes import SHARED_DATA

STAR = SHARED_DATA / "star" / "dialogues"
ABCD = SHARED_DATA / "abcd" / "data" / "abcd_sample.json"


def read(name: str, data: bytes | str, media_type: str) -> ReadResult:
    raw = data.encode() if isinstance(data, str) else data
    return read_material(MaterialRef("mat_t", name, media_type), raw)


def spoken(transcript: Transcript) -> list[tuple[str, str]]:
    return [(turn.speaker, turn.text) for turn in transcript.turns]


# ---- speaker roles -------------------------------------------------------------------------


def test_speaker_labels_are_normalised_to_roles() -> None:
    assert [
        speaker_role(label)
        for label in ("USER", "Client", "caller", "Visitor", "Customer (Jane)", "Agent Smith")
    ] == ["customer", "customer", "customer", "customer", "customer", "agent"]
    assert [
        speaker_role(label)
        for label in ("assistant", "Bot", "Representative", "rep", "Support", "Wizard", "Operator")
    ] == ["agent"] * 7
    assert speaker_role("Customer Service Rep") == "agent"
    assert [speaker_role(label) for label in ("action", "System", "note")] == [
        "action",
        "system",
        "system",
    ]
    assert speaker_role("Maria") is None and speaker_role("the customer said") is None


def test_names_are_guessed_from_the_other_party_or_who_speaks_first() -> None:
    roles, guessed = assign_speakers(["Agent", "Maria", "Agent"])
    assert roles == {"Agent": "agent", "Maria": "customer"} and guessed is not None
    roles, guessed = assign_speakers(["Tom", "Maria", "Tom"])
    assert roles == {"Tom": "agent", "Maria": "customer"}
    assert guessed == "Tom=agent, Maria=customer (guessed from who speaks)"
    assert assign_speakers(["Agent", "Customer"]) == (
        {"Agent": "agent", "Customer": "customer"},
        None,
    )


# ---- Deputy's format -----------------------------------------------------------------------

OWN = {
    "conversations": [
        {
            "id": "c-17",
            "metadata": {"channel": "chat", "csat": 5},
            "turns": [
                {"speaker": "customer", "text": "Please cancel order 123."},
                {
                    "speaker": "action",
                    "text": "order 123 is pending",
                    "action": "get_order_details",
                    "arguments": {"order_id": "123", "expand": ["items"]},
                },
                {"speaker": "assistant", "text": "Done.", "action": "confirm_cancel"},
            ],
        },
        {"turns": [{"speaker": "user", "text": "Hi"}, {"speaker": "bot", "text": "Hello!"}]},
    ]
}


def test_deputys_own_format_keeps_actions_arguments_and_metadata() -> None:
    result = read("export.json", json.dumps(OWN), "application/json")
    assert result.kind == "transcripts" and not result.problems
    first, second = result.transcripts
    assert first.id == "c-17" and first.metadata == {"channel": "chat", "csat": "5"}
    assert [t.speaker for t in first.turns] == ["customer", "action", "agent"]
    assert first.turns[1].action == "get_order_details"
    assert first.turns[1].arguments == {"order_id": "123", "expand": '["items"]'}
    assert first.turns[2].action == "confirm_cancel"
    assert [t.index for t in first.turns] == [1, 2, 3]
    assert second.id == "2" and spoken(second) == [("customer", "Hi"), ("agent", "Hello!")]


def test_a_single_conversation_a_list_and_yaml_are_accepted() -> None:
    single = OWN["conversations"][0]
    assert read("one.json", json.dumps(single), "application/json").transcripts[0].id == "c-17"
    listed = read("list.json", json.dumps(OWN["conversations"]), "application/json")
    assert [t.id for t in listed.transcripts] == ["c-17", "2"]
    as_yaml = read("export.yaml", yaml.safe_dump(OWN), "application/yaml")
    as_json = read("e.json", json.dumps(OWN), "application/json")
    assert [t.turns for t in as_yaml.transcripts] == [t.turns for t in as_json.transcripts]


def test_a_conversation_with_a_bad_turn_is_left_out_with_a_problem() -> None:
    bad = {
        "conversations": [
            {"id": "ok", "turns": [{"speaker": "agent", "text": "Hello"}]},
            {"id": "bad", "turns": [{"speaker": "manager", "text": "Hi"}]},
        ]
    }
    result = read("export.json", json.dumps(bad), "application/json")
    assert [t.id for t in result.transcripts] == ["ok"]
    assert [p.code for p in result.problems] == ["invalid_content"]
    assert "'bad'" in result.problems[0].message and "manager" in result.problems[0].message


# ---- STAR and ABCD -------------------------------------------------------------------------


def test_star_dialogues_keep_utterances_suggestions_queries_and_answers() -> None:
    raw = json.loads((STAR / "1.json").read_text())
    result = read("1.json", (STAR / "1.json").read_bytes(), "application/json")
    (dialogue,) = result.transcripts
    assert dialogue.id == "1"
    assert dialogue.metadata == {"CompletionLevel": "Complete", "DialogueID": "1"}
    users = [e["Text"] for e in raw["Events"] if e["Agent"] == "User" and e["Action"] == "utter"]
    assert [t.text for t in dialogue.turns if t.speaker == "customer"] == users
    picked = [t.action for t in dialogue.turns if t.speaker == "agent" and t.action]
    assert picked == ["ask_name", "doctor_inform_doctors_instructions", "goodbye_1"]
    (query,) = [t for t in dialogue.turns if t.speaker == "action"]
    assert query.action == "doctor_followup"
    assert query.arguments == {"Name": "Dr. Johnson", "PatientName": "Alexis"}
    answer = dialogue.turns[query.index]  # the turn after the query (indices are 1-based)
    assert answer.speaker == "system" and answer.text.startswith("doctor_followup returned")
    texts = " ".join(t.text for t in dialogue.turns)
    assert "[instruction" not in texts  # user-guide instructions are left out


def test_star_dialogues_keep_no_scenario_answer_keys() -> None:
    for name in ("1.json", "1001.json", "2981.json"):
        raw = json.loads((STAR / name).read_text())
        (dialogue,) = read(name, (STAR / name).read_bytes(), "application/json").transcripts
        assert set(dialogue.metadata) <= {"CompletionLevel", "DialogueID"}
        task = raw["Scenario"]["WizardCapabilities"][0]["Task"]
        assert task not in dialogue.metadata.values()
        assert dialogue.turns and all(t.text for t in dialogue.turns)


def test_a_star_query_that_finds_nothing_says_so() -> None:
    (dialogue,) = read(
        "2981.json", (STAR / "2981.json").read_bytes(), "application/json"
    ).transcripts
    answers = [t.text for t in dialogue.turns if t.speaker == "system"]
    assert "restaurant_book found nothing" in answers


def test_a_list_of_star_dialogues_is_accepted() -> None:
    dialogues = [json.loads((STAR / name).read_text()) for name in ("1.json", "10.json")]
    result = read("batch.json", json.dumps(dialogues), "application/json")
    assert [t.id for t in result.transcripts] == [str(d["DialogueID"]) for d in dialogues]


def test_abcd_conversations_are_read_from_original_without_the_scenario() -> None:
    raw = json.loads(ABCD.read_text())
    result = read("abcd_sample.json", ABCD.read_bytes(), "application/json")
    assert [t.id for t in result.transcripts] == [str(c["convo_id"]) for c in raw]
    for transcript, conversation in zip(result.transcripts, raw, strict=True):
        assert spoken(transcript) == [(s, text) for s, text in conversation["original"]]
        assert transcript.metadata == {}
    assert result.transcripts[0].turns[6].speaker == "action"


# ---- CSV -----------------------------------------------------------------------------------


def test_csv_rows_are_grouped_by_conversation_in_order() -> None:
    table = (
        "Ticket,Role,Message,Timestamp\n"
        "T1,customer,Where is my parcel?,10:00\n"
        "T2,user,I want a refund,10:01\n"
        'T1,agent,"It ships today, sorry.",10:02\n'
        "T2,Support Agent,Refund started.,10:03\n"
    )
    result = read("tickets.csv", table, "text/csv")
    assert result.kind == "transcripts"
    first, second = result.transcripts
    assert first.id == "T1"
    assert spoken(first) == [
        ("customer", "Where is my parcel?"),
        ("agent", "It ships today, sorry."),
    ]
    assert spoken(second) == [("customer", "I want a refund"), ("agent", "Refund started.")]


def test_csv_without_an_id_column_is_one_conversation_and_semicolons_work() -> None:
    result = read("chat.csv", "speaker;text\nCustomer;Hello\nAgent;Hi there\n", "text/csv")
    (transcript,) = result.transcripts
    assert transcript.id == "chat.csv" and len(transcript.turns) == 2


def test_csv_with_an_unknown_header_explains_the_expected_columns() -> None:
    result = read("orders.csv", "order,amount\n1,20\n", "text/csv")
    assert [p.code for p in result.problems] == ["invalid_content"]
    message = result.problems[0].message
    assert "order, amount" in message and "speaker" in message and "conversation_id" in message


# ---- plain text ----------------------------------------------------------------------------


def test_plain_text_turns_with_continuations_and_separators() -> None:
    text = (
        "[10:02] Agent: Hello, how can I help?\n"
        "Customer: My order 123 arrived broken.\n"
        "The box was crushed.\n"
        "Agent: Sorry! I will send a new one.\n"
        "---\n"
        "User: Can I change my address?\n"
        "Assistant: Yes, tell me the new one.\n"
    )
    result = read("chats.txt", text, "text/plain")
    first, second = result.transcripts
    assert (first.id, second.id) == ("1", "2")
    assert spoken(first)[1] == ("customer", "My order 123 arrived broken.\nThe box was crushed.")
    assert [t.speaker for t in second.turns] == ["customer", "agent"]


def test_blank_lines_between_turns_do_not_split_a_conversation() -> None:
    text = "Agent: Hi\n\nCustomer: Hello\n\nAgent: How can I help?\n\nCustomer: A refund.\n"
    (transcript,) = read("call.txt", text, "text/plain").transcripts
    assert transcript.id == "call.txt" and len(transcript.turns) == 4


def test_blank_lines_between_dialogues_split_them() -> None:
    text = "Agent: Hi\nCustomer: Refund please\n\nAgent: Hello\nCustomer: Where is my order?\n"
    result = read("calls.txt", text, "text/plain")
    assert [len(t.turns) for t in result.transcripts] == [2, 2]


roles = st.sampled_from(["Agent", "Customer", "User", "Assistant", "Bot", "Caller"])
words = st.text(alphabet="abcdefghij klmnop,.?", min_size=1, max_size=40).filter(
    lambda text: text.strip() and ":" not in text
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(roles, words), min_size=2, max_size=12))
def test_any_rendered_dialogue_reads_back_turn_by_turn(turns: list[tuple[str, str]]) -> None:
    """Property: "Speaker: text" lines written from any turns read back as those turns."""
    sides = {speaker_role(label) for label, _ in turns}
    if sides != {"agent", "customer"}:
        turns = [("Agent", "hello"), ("Customer", "hi"), *turns]
    text = "\n".join(f"{label}: {words_}" for label, words_ in turns)
    (transcript,) = read("chat.txt", text, "text/plain").transcripts
    assert spoken(transcript) == [(speaker_role(label), said.strip()) for label, said in turns]
    assert [t.index for t in transcript.turns] == list(range(1, len(turns) + 1))


# ---- WebVTT and SRT ------------------------------------------------------------------------

VTT = """WEBVTT

NOTE exported from the call recorder

2
00:00:04.000 --> 00:00:06.000
<v Customer>My parcel is late.</v>

1
00:00:00.500 --> 00:00:03.000
<v.loud Agent>Thanks for calling &amp; sorry for the wait.</v>

3
00:00:06.500 --> 00:00:08.000
It was due on Monday.

4
00:00:09.000 --> 00:00:11.000
<v Agent>Let me check <i>right now</i>.</v>
"""

SRT = """1
00:00:01,000 --> 00:00:02,500
Maria: Good morning, Acme support.

2
00:00:03,000 --> 00:00:05,000
Tom: Hi, I cannot log in.

3
00:00:05,200 --> 00:00:06,000
Since yesterday.
"""


def test_webvtt_voices_in_time_order_with_continuing_cues_merged() -> None:
    (transcript,) = read("call.vtt", VTT, "text/vtt").transcripts
    assert spoken(transcript) == [
        ("agent", "Thanks for calling & sorry for the wait."),
        ("customer", "My parcel is late. It was due on Monday."),
        ("agent", "Let me check right now."),
    ]


def test_srt_named_speakers_are_guessed_and_recorded() -> None:
    (transcript,) = read("call.srt", SRT, "application/x-subrip").transcripts
    assert spoken(transcript) == [
        ("agent", "Good morning, Acme support."),
        ("customer", "Hi, I cannot log in. Since yesterday."),
    ]
    assert transcript.metadata["speakers"].startswith("Maria=agent, Tom=customer")


def test_captions_without_speakers_are_system_turns_and_empty_captions_a_problem() -> None:
    (transcript,) = read(
        "c.vtt", "WEBVTT\n\n00:01.000 --> 00:02.000\nhello\n", "text/vtt"
    ).transcripts
    assert spoken(transcript) == [("system", "hello")]
    result = read("empty.vtt", "WEBVTT\n\nNOTE nothing here\n", "text/vtt")
    assert [p.code for p in result.problems] == ["empty"]


def test_real_star_files_are_all_readable(tmp_path: Path) -> None:
    names = sorted(path.name for path in STAR.glob("*.json"))[:40]
    for name in names:
        result = read(name, (STAR / name).read_bytes(), "application/json")
        assert result.kind == "transcripts" and not result.problems, name


def test_a_title_line_before_the_turns_is_allowed_and_left_out() -> None:
    text = "Chat transcript #4411\nAgent: Hello!\nCustomer: Hi, where is my order?\n"
    (transcript,) = read("chat.txt", text, "text/plain").transcripts
    assert spoken(transcript) == [("agent", "Hello!"), ("customer", "Hi, where is my order?")]


def test_a_csv_field_beyond_the_csv_modules_limit_is_damaged() -> None:
    table = "speaker,text\nagent," + "x" * 200_000 + "\n"
    result = read("huge.csv", table, "text/csv")
    assert [p.code for p in result.problems] == ["damaged"]
