//! The REST resources of Adam's API (docs/API.md), as the browser sees them.

export type Role = "super_admin" | "dealership_admin" | "user";

export interface User {
  id: string;
  email: string;
  role: Role;
  dealership_id: string | null;
  display_name: string | null;
  disabled: boolean;
  created_at: string;
  updated_at: string;
}

export interface TokenPair {
  access_token: string;
  refresh_token: string;
  token_type: string;
  expires_in: number;
}

export interface Dealership {
  id: string;
  name: string;
  allowed_origins: string[];
  persona: string;
  voice: string;
  avatar: Record<string, unknown>;
  embed_key: string;
  /** Where leads (conversations in which a customer left contact details) are emailed; null: none. */
  lead_email: string | null;
  /** IANA time zone: the dealership's "today" and "tomorrow". */
  timezone: string;
  /** Usage-limit overrides of the server's `[limits]` (absent: the server's value); super_admin only. */
  limits: Record<string, number>;
  /** Days finished transcripts are kept (0: forever); null: the server's default. */
  retention_days: number | null;
  /** The notice that conversations are recorded; null: the server's default. */
  recording_notice: string | null;
  created_at: string;
  updated_at: string;
}

export type DocumentStatus = "queued" | "processing" | "ready" | "failed";

export interface KnowledgeDocument {
  id: string;
  dealership_id: string;
  filename: string;
  kind: string;
  content_type: string;
  size_bytes: number;
  status: DocumentStatus;
  error: string | null;
  chunk_count: number;
  created_at: string;
  updated_at: string;
}

export interface Citation {
  document_id: string;
  title: string;
  text: string;
  score: number;
  page: number | null;
}

export interface ResponseMetrics {
  stt_ms: number | null;
  answer_first_token_ms: number | null;
  tts_first_audio_ms: number | null;
  voice_to_voice_ms: number | null;
  cache_hit: boolean;
}

export interface SessionSummary {
  id: string;
  dealership_id: string;
  user_id: string | null;
  transport: string;
  started_at: string;
  ended_at: string | null;
  end_reason: string | null;
}

export interface SessionTurn {
  seq: number;
  user_text: string;
  assistant_text: string;
  status: "completed" | "cancelled" | "failed";
  interrupted: boolean;
  citations: Citation[];
  latency_ms: number | null;
  metrics: Partial<ResponseMetrics>;
  started_at: string;
}

export interface SessionDetail extends SessionSummary {
  turns: SessionTurn[];
}

export interface CacheLevelStats {
  hits: number;
  misses: number;
  entries: number;
}

export interface CacheStats {
  dealership_id: string | null;
  embedding: CacheLevelStats;
  semantic: CacheLevelStats;
}

export interface KnowledgeGap {
  dealership_id: string;
  question: string;
  count: number;
  similar: string[];
  first_asked_at: string;
  last_asked_at: string;
}

export interface KnowledgeGaps {
  gaps: KnowledgeGap[];
}

/** Work done in a day or a period (`GET /v1/usage`). */
export interface UsageTotals {
  sessions: number;
  turns: number;
  stt_seconds: number;
  prompt_tokens: number;
  completion_tokens: number;
  tts_characters: number;
  audio_in_seconds: number;
  audio_out_seconds: number;
}

export interface UsageDay extends UsageTotals {
  day: string;
}

export interface DealershipUsage {
  dealership_id: string;
  name: string;
  totals: UsageTotals;
  days: UsageDay[];
  monthly_turns_cap: number;
  monthly_audio_minutes_cap: number;
  month_turns: number;
  month_audio_minutes: number;
}

export interface UsageReport {
  from: string;
  to: string;
  dealerships: DealershipUsage[];
}
