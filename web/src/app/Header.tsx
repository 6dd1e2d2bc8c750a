//! The header bar of Adam's pages.

import type { ComponentChildren } from "preact";

export function Header({ subtitle, children }: { subtitle: string; children?: ComponentChildren }) {
  return (
    <header class="page-header">
      <a class="page-brand" href="/">
        <span class="page-brand__mark" aria-hidden="true">
          A
        </span>
        Adam <span class="page-brand__sub">{subtitle}</span>
      </a>
      <span class="page-header__spacer" />
      {children}
    </header>
  );
}
