//! The admin pages (`/admin/`).

import "../ui/controls.css";
import "../ui/page.css";
import "./admin.css";
import { render } from "preact";
import { Api } from "../api/http";
import { TokenStore } from "../api/tokens";
import { AdminApp } from "./AdminApp";

render(<AdminApp api={new Api("", new TokenStore())} />, document.getElementById("app") as HTMLElement);
