//! Knowledge gaps: the questions the dealership's documents did not answer, most asked first,
//! so an admin sees which document to add. A gap clears itself once the documents answer it.

import type { KnowledgeGaps } from "../api/types";
import { formatDateTime } from "./format";
import { scopeQuery, type PageProps } from "./scope";
import { useResource } from "./useResource";

export function KnowledgeGapsPage({ scope }: PageProps) {
  const query = scopeQuery(scope);
  const gaps = useResource(() => scope.api.request<KnowledgeGaps>(`/v1/knowledge-gaps${query}`), query);
  const list = gaps.data?.gaps ?? [];

  return (
    <section class="admin-page">
      <header class="admin-page__head">
        <div>
          <h1>Knowledge gaps</h1>
          <p class="admin-page__lead">
            Questions customers asked that your documents do not answer. Add or update a document that states the answer;
            a question leaves this list once it would be answered.
          </p>
        </div>
        <div class="admin-page__actions">
          <button class="adam-button" type="button" onClick={() => void gaps.reload()}>
            Refresh
          </button>
        </div>
      </header>
      {gaps.error && <p class="adam-notice adam-notice--error">{gaps.error}</p>}
      <div class="table-wrap">
        <table class="table" data-testid="knowledge-gaps">
          <thead>
            <tr>
              <th>Question</th>
              <th>Asked</th>
              <th>Last asked</th>
              <th>Also asked as</th>
            </tr>
          </thead>
          <tbody>
            {list.length === 0 && (
              <tr>
                <td colSpan={4} class="table__empty">
                  {gaps.loading ? "Loading…" : "No unanswered questions."}
                </td>
              </tr>
            )}
            {list.map((gap) => (
              <tr key={`${gap.dealership_id}:${gap.question}`}>
                <td>{gap.question}</td>
                <td>{gap.count === 1 ? "once" : `${gap.count} times`}</td>
                <td>{formatDateTime(gap.last_asked_at)}</td>
                <td>{gap.similar.join(" · ") || "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
