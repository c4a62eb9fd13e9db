// myspinbot: a ComfyUI sidebar tab that shows the pack's page (/myspinbot/) in an iframe.
// ComfyUI loads every .js file in this folder into its frontend; the page's own files live in
// web/page/ and are served by the pack at /myspinbot/page/.
import { app } from "../../scripts/app.js";

// This file is served at <root>/extensions/<pack>/myspinbot_sidebar.js, so <root>/myspinbot/ is two up
// (which keeps a reverse-proxy prefix in front of ComfyUI).
const PAGE_URL = new URL("../../myspinbot/", import.meta.url).href;

function renderTab(el) {
  el.replaceChildren();
  el.style.height = "100%"; // the tab's container is full height; fill it
  const box = document.createElement("div");
  box.className = "myspinbot-sidebar";
  box.style.cssText = "display:flex;flex-direction:column;height:100%;min-height:400px;box-sizing:border-box;";

  const bar = document.createElement("div");
  bar.style.cssText = "display:flex;justify-content:space-between;align-items:center;padding:4px 8px;font-size:12px;";
  const title = document.createElement("span");
  title.textContent = "myspinbot — talking heads";
  const open = document.createElement("a");
  open.href = PAGE_URL;
  open.target = "_blank";
  open.rel = "noopener";
  open.textContent = "open in a new tab ↗";
  open.style.color = "inherit";
  bar.append(title, open);

  const frame = document.createElement("iframe");
  frame.src = PAGE_URL;
  frame.title = "myspinbot";
  frame.style.cssText = "flex:1;width:100%;border:0;background:transparent;";
  box.append(bar, frame);
  el.append(box);
}

app.registerExtension({
  name: "myspinbot.sidebar",
  async setup() {
    const manager = app.extensionManager;
    if (!manager || typeof manager.registerSidebarTab !== "function") {
      console.warn("myspinbot: this ComfyUI frontend has no sidebar tab API; open", PAGE_URL);
      return;
    }
    manager.registerSidebarTab({
      id: "myspinbot",
      icon: "pi pi-video",
      title: "myspinbot",
      tooltip: "myspinbot: make a talking-head video",
      type: "custom",
      render: renderTab,
    });
  },
});
