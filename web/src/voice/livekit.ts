//! The part of `livekit-client` the video avatar uses. Never imported statically: the page
//! loads it with `import()` (a chunk of its own) and the widget as `widget-livekit.js` (a
//! script of its own, vite.livekit.config.ts), only when a dealership's avatar is a video one.

export { Room, RoomEvent, Track } from "livekit-client";
