//! The answer caches: hit rates and entries, and clearing the dealership's cached answers.

import { useState } from "preact/hooks";
import type { CacheLevelStats, CacheStats } from "../api/types";
import { scopeQuery, type PageProps } from "./scope";
import { describeError, useResource } from "./useResource";

export function CachePage({ scope }: PageProps) {
  const query = scopeQuery(scope);
  const stats = useResource(() => scope.api.request<CacheStats>(`/v1/cache/stats${query}`), query);
  const [message, setMessage] = useState<{ tone: "error" | "info"; text: string } | null>(null);

  const clear = async () => {
    if (!window.confirm("Forget every cached answer of this dealership? The next questions are answered afresh.")) return;
    try {
      await scope.api.request(`/v1/cache${query}`, { method: "DELETE" });
      setMessage({ tone: "info", text: "Cached answers cleared." });
    } catch (err) {
      setMessage({ tone: "error", text: describeError(err) });
    }
    await stats.reload();
  };

  return (
    <section class="admin-page">
      <header class="admin-page__head">
        <div>
          <h1>Cache</h1>
          <p class="admin-page__lead">Repeated questions are answered from the cache, faster and at no model cost.</p>
        </div>
        <div class="admin-page__actions">
          <button class="adam-button" type="button" onClick={() => void stats.reload()}>
            Refresh
          </button>
          <button class="adam-button adam-button--danger" type="button" onClick={() => void clear()}>
            Clear cached answers
          </button>
        </div>
      </header>
      {(message || stats.error) && <p class={`adam-notice adam-notice--${message?.tone ?? "error"}`}>{message?.text ?? stats.error}</p>}
      {stats.data && (
        <div class="stat-grid">
          <CacheCard title="Answers (semantic cache)" hint="Per dealership: a question close to one answered before gets the same answer." stats={stats.data.semantic} />
          <CacheCard title="Embeddings" hint="Shared by all dealerships: question text → vector." stats={stats.data.embedding} />
        </div>
      )}
    </section>
  );
}

function CacheCard({ title, hint, stats }: { title: string; hint: string; stats: CacheLevelStats }) {
  const lookups = stats.hits + stats.misses;
  return (
    <div class="card stat">
      <h2>{title}</h2>
      <p class="card__lead">{hint}</p>
      <dl class="stat__numbers">
        <div>
          <dt>Hit rate</dt>
          <dd>{lookups === 0 ? "—" : `${Math.round((stats.hits / lookups) * 100)} %`}</dd>
        </div>
        <div>
          <dt>Hits</dt>
          <dd>{stats.hits}</dd>
        </div>
        <div>
          <dt>Misses</dt>
          <dd>{stats.misses}</dd>
        </div>
        <div>
          <dt>Entries</dt>
          <dd>{stats.entries}</dd>
        </div>
      </dl>
    </div>
  );
}
