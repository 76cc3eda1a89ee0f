"""Natural-language phrasings of the gold reasoning steps of the CER data (see :mod:`services.data.cer_data`).

Every step is written from several sentence patterns chosen with a seeded generator, so a judge cannot
learn the label from the wording. No phrasing depends on the support stage, and the emotion and
strategy sentences are written for the value the step states (a corrupted step is consistent in
itself): only the dialogue tells a right step from a wrong one.

>>> import random
>>> text = history_text("job crisis", random.Random(1))
>>> "job" in text or "work" in text or "career" in text
True
"""

from __future__ import annotations

import random

#: Several ways of naming each ESConv problem type; unknown types fall back to their own words.
PROBLEM_WORDS: dict[str, tuple[str, ...]] = {
    "ongoing depression": (
        "a long stretch of depression",
        "depression that has not let up",
        "feeling low for a long time",
        "persistent depressive feelings",
    ),
    "job crisis": (
        "a crisis at work",
        "trouble with their job",
        "the possibility of losing their work",
        "a difficult situation in their career",
    ),
    "breakup with partner": (
        "a breakup",
        "the end of a relationship",
        "splitting up with their partner",
        "a painful separation from someone they loved",
    ),
    "problems with friends": (
        "trouble with their friends",
        "a falling-out with friends",
        "strained friendships",
        "conflict in their circle of friends",
    ),
    "academic pressure": (
        "pressure at school",
        "the stress of their studies",
        "academic demands that feel too heavy",
        "worries about exams and grades",
    ),
    "sleep problems": ("trouble sleeping", "nights without enough sleep", "sleep difficulties"),
    "procrastination": ("putting things off", "procrastination", "struggling to get started on tasks"),
    "appearance anxiety": ("worries about how they look", "anxiety about their appearance"),
    "alcohol abuse": ("drinking too much", "a problem with alcohol"),
    "conflict with parents": ("conflict with their parents", "arguments at home with their parents"),
    "issues with parents": ("difficulties with their parents", "a hard relationship with their parents"),
    "issues with children": ("difficulties with their children", "worries about their kids"),
    "school bullying": ("being bullied at school", "bullying at school"),
}

_HISTORY_OPENERS = (
    "The seeker is dealing with {problem}.",
    "What the seeker has brought up so far is {problem}.",
    "This conversation is about {problem}.",
    "The seeker came to talk about {problem}.",
    "So far the seeker has described {problem}.",
    "At the heart of what the seeker shares is {problem}.",
)
_HISTORY_FOLLOWS = (
    "They have been explaining how it affects their daily life.",
    "The supporter should keep the conversation centred on what they need now.",
    "The next reply has to build on what they just said.",
    "They are still sharing details of the situation.",
    "It helps to keep track of what has already been said before answering.",
    "",
)
_EMOTION_SENTENCES = (
    "Their messages suggest {emotion}.",
    "The way they write points to {emotion}.",
    "{Emotion} seems to be the main feeling behind their words.",
    "The seeker mostly expresses {emotion}.",
    "What comes through most is {emotion}.",
    "Reading their messages, the strongest emotion is {emotion}.",
)
_EMOTION_FOLLOWS = (
    "This colours how they describe the situation.",
    "It is worth acknowledging before moving on.",
    "They return to this feeling more than once.",
    "",
)
#: Reasons for each strategy, written so they name what the reply does, never the stage.
STRATEGY_REASONS: dict[str, tuple[str, ...]] = {
    "Question": (
        "Ask an open question to learn more about what they are going through.",
        "A question will help them say more about the situation.",
        "I need more detail, so the reply asks them something.",
    ),
    "Restatement or Paraphrasing": (
        "Repeat back what they said in other words to show I understood.",
        "Paraphrasing their words helps them feel heard and lets them correct me.",
        "Restate their situation briefly so we are on the same page.",
    ),
    "Reflection of feelings": (
        "Name the feeling they describe so they know it is understood.",
        "Reflecting their feelings back shows that I notice how hard this is.",
        "Put their emotion into words for them.",
    ),
    "Self-disclosure": (
        "Share a similar experience of my own so they feel less alone.",
        "Telling them I have been through something like this builds trust.",
        "A short personal story shows that their feelings are shared by others.",
    ),
    "Affirmation and Reassurance": (
        "Reassure them and affirm their strengths.",
        "Tell them their reaction is understandable and that they can get through this.",
        "Offer encouragement and validate what they are doing.",
    ),
    "Providing Suggestions": (
        "Suggest something concrete they could try.",
        "Offer a practical idea for how they might handle this.",
        "Propose a next step they can take.",
    ),
    "Information": (
        "Give them useful information about the situation.",
        "Share facts or resources that may help them.",
        "Explain something that could make the situation clearer.",
    ),
    "Others": (
        "Keep the conversation going with a friendly, natural reply.",
        "A brief social reply fits here.",
        "Respond warmly to keep the exchange comfortable.",
    ),
}

#: Generic replies that fit any dialogue and help none; the ``filler`` corruption uses them.
FILLER_REPLIES: tuple[str, ...] = (
    "I understand.",
    "That must be hard.",
    "Okay.",
    "I see.",
    "I hear you.",
    "That sounds tough.",
    "Hmm, okay.",
    "Right, I get it.",
    "Thanks for sharing.",
    "Sorry to hear that.",
    "Oh, I see what you mean.",
    "Yes, that happens.",
    "Alright.",
    "I know how that is.",
    "Interesting.",
    "That is a lot.",
)


def problem_phrase(problem_type: str, rng: random.Random) -> str:
    """One way of naming the dialogue's problem type."""
    key = problem_type.strip().lower()
    return rng.choice(PROBLEM_WORDS.get(key, (key, f"issues around {key}")))


def history_text(problem_type: str, rng: random.Random) -> str:
    """The free text of ``history_analysis`` (the problem, in varied words, never the stage)."""
    opener = rng.choice(_HISTORY_OPENERS).format(problem=problem_phrase(problem_type, rng))
    return f"{opener} {rng.choice(_HISTORY_FOLLOWS)}".strip()


def emotion_text(emotion: str, rng: random.Random) -> str:
    """The free text of ``emotional_state`` for the emotion the step states."""
    sentence = rng.choice(_EMOTION_SENTENCES).format(emotion=emotion, Emotion=emotion.capitalize())
    return f"{sentence} {rng.choice(_EMOTION_FOLLOWS)}".strip()


def strategy_text(strategy: str, rng: random.Random) -> str:
    """The reason sentence of ``support_strategy`` for the strategy the step states."""
    return rng.choice(STRATEGY_REASONS[strategy])
