//! The widget's launcher button and its panel around the shared conversation view.

import { useState } from "preact/hooks";
import { ChatIcon, CloseIcon } from "../ui/icons";
import { ConversationView } from "../ui/ConversationView";
import { useStore } from "../ui/useStore";
import type { Conversation } from "../voice/conversation";

export function Widget({ conversation }: { conversation: Conversation }) {
  const [open, setOpen] = useState(false);
  const state = useStore(conversation.state);
  const name = typeof state.avatarSettings["name"] === "string" ? (state.avatarSettings["name"] as string) : "Assistant";

  const toggle = () => {
    if (open) conversation.end();
    else void conversation.start();
    setOpen(!open);
  };

  return (
    <>
      {open && (
        <div class="adam-widget__panel" role="dialog" aria-label={`Talk with our ${name.toLowerCase() === "assistant" ? "assistant" : name}`}>
          <header class="adam-widget__head">
            <span>Ask us anything</span>
            <button class="adam-widget__close" type="button" aria-label="Close" onClick={toggle}>
              <CloseIcon />
            </button>
          </header>
          <div class="adam-widget__body">
            <ConversationView conversation={conversation} assistantName={name} compact />
          </div>
        </div>
      )}
      <button class="adam-widget__launcher" type="button" aria-expanded={open} aria-label={open ? "Close the assistant" : "Talk with our assistant"} onClick={toggle}>
        {open ? <CloseIcon /> : <ChatIcon />}
      </button>
    </>
  );
}
