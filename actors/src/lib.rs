//! The conversation actor tree (session → STT, turn, TTS, avatar). Filled by the actor-tree issue.
