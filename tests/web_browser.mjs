// Drive depth2mesh's web page in headless Chromium (Debian's /usr/bin/chromium) with
// playwright-core, as a person would: add a photo, set options, press "Make 3D", wait.
//
// Usage: node web_browser.mjs '<JSON job>'   (prints one JSON report on stdout)
// Job fields:
//   url               the page, on a loopback address
//   photo             a file to upload through the photo's file input, or
//   sample            the 0-based index of a sample photo to click instead
//   options           {model: "dav2-metric-indoor", camera: "fov", fov: 63.3, near: 1.2, far: 5,
//                     grid: 256, dropFar: true}, all optional (model: a --model name, whose
//                     radio button is clicked; the report says whether Near shows after it)
//   expect            "result" (wait for the depth picture and the 3D view) or "error"
//   screenshot        PNG path for the whole page (after the wait)
//   canvasScreenshot  PNG path for the 3D viewer's canvas ("result" only)
//   viewport          {width, height}, default 1280x1000
//   timeoutMs         how long to wait for the result, default 180000
//   chromium          the browser binary, default /usr/bin/chromium
//
// Every request that leaves the loopback addresses is recorded (offHost) and aborted, so the
// page is also tested as it works offline.
import { createRequire } from "node:module";

const job = JSON.parse(process.argv[2] ?? "{}");
const require = createRequire(import.meta.url);
const { chromium } = require("playwright-core");

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function main() {
  const report = {
    offHost: [],
    consoleErrors: [],
    toasts: [],
    progressTexts: [],
    heatSrc: null,
    sliderImages: 0,
    canvases: 0,
    canvasBytes: 0,
    downloads: [],
    summary: "",
    nearVisible: null,
    modelNote: "",
    seconds: 0,
  };
  const browser = await chromium.launch({
    executablePath: job.chromium ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--use-angle=swiftshader",
      "--enable-unsafe-swiftshader",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
  try {
    const page = await browser.newPage({ viewport: job.viewport ?? { width: 1280, height: 1000 } });
    await page.route("**/*", (route) => {
      const url = new URL(route.request().url());
      if (LOOPBACK.has(url.hostname)) return route.continue();
      report.offHost.push(url.href);
      return route.abort();
    });
    page.on("console", (message) => {
      if (message.type() === "error") report.consoleErrors.push(message.text().slice(0, 300));
    });
    await page.goto(job.url, { waitUntil: "load", timeout: 60000 });
    await page.locator("#d2m-convert").waitFor({ state: "visible", timeout: 60000 });

    if (job.photo) {
      await page.setInputFiles("#d2m-photo input[type=file]", job.photo);
    } else if (job.sample !== undefined) {
      await page.locator("#d2m-samples button.gallery-item").nth(job.sample).click();
    }
    // the upload is done when the photo shows (a file that is not an image gets an <img> too),
    // or when the page refuses it with a message
    const toastText = "[data-testid=toast-text]";
    const uploaded = Date.now() + 30000;
    while (Date.now() < uploaded) {
      if ((await page.locator("#d2m-photo img").count()) > 0) break;
      if ((await page.locator(toastText).count()) > 0) break;
      await sleep(100);
    }
    await sleep(500);

    const options = job.options ?? {};
    if (options.model !== undefined) {
      await page.locator(`#d2m-model input[type=radio][value="${options.model}"]`).check();
      await sleep(1000); // the page hides or shows Near and Far
    }
    report.nearVisible = await page.locator("#d2m-near input").isVisible();
    report.modelNote = (await page.locator("#d2m-model-note").allInnerTexts()).join(" ").trim();
    if (options.dropFar) await page.locator("#d2m-drop-far input[type=checkbox]").check();
    if (options.camera === "fov") await page.getByText("The FOV below", { exact: true }).click();
    for (const [key, selector] of [
      ["fov", "#d2m-fov input[type=number]"],
      ["near", "#d2m-near input"],
      ["far", "#d2m-far input"],
      ["grid", "#d2m-grid input[type=number]"],
    ]) {
      if (options[key] === undefined) continue;
      await page.fill(selector, String(options[key]));
      await page.press(selector, "Enter");
      await page.locator(selector).blur();
    }

    const started = Date.now();
    await page.click("#d2m-convert");
    const deadline = started + (job.timeoutMs ?? 180000);
    for (;;) {
      if (Date.now() > deadline) throw new Error("timed out waiting for the page");
      const progress = await page.locator(".progress-text, .progress-level-inner, .meta-text")
        .allInnerTexts().catch(() => []);
      for (const text of progress) {
        const line = text.trim();
        if (line && !report.progressTexts.includes(line)) report.progressTexts.push(line);
      }
      if ((await page.locator(toastText).count()) > 0) break;
      if (job.expect === "result" && (await page.locator("#d2m-heat img").count()) > 0 &&
          (await page.locator("#d2m-files a[download]").count()) > 0) break;
      await sleep(100);
    }
    report.seconds = (Date.now() - started) / 1000;
    await sleep(300); // a second message may follow the first
    report.toasts = (await page.locator(toastText).allInnerTexts()).map((t) => t.trim());

    if (job.expect === "result" && report.toasts.length === 0) {
      report.heatSrc = await page.locator("#d2m-heat img").first().getAttribute("src");
      report.sliderImages = await page.locator("#d2m-slider img").count();
      report.downloads = await page.locator("#d2m-files a[download]").evaluateAll(
        (links) => links.map((a) => ({ name: a.getAttribute("download"), href: a.href })));
      report.summary = (await page.locator("#d2m-summary").innerText()).trim();
      const canvas = page.locator("#d2m-viewer canvas");
      await canvas.first().waitFor({ state: "visible", timeout: 30000 });
      report.canvases = await canvas.count();
      // the viewer loads the GLB asynchronously: wait until the canvas shows more than a
      // uniform background (a flat PNG of it is a few kilobytes), then let the camera settle
      const until = Date.now() + 60000;
      let shot = await canvas.first().screenshot();
      while (shot.length < 40000 && Date.now() < until) {
        await sleep(250);
        shot = await canvas.first().screenshot();
      }
      await sleep(1500);
      // the canvas alone: hide the label and the buttons drawn over it
      const hide = await page.addStyleTag({
        content: "#d2m-viewer [data-testid=block-label], #d2m-viewer .icon-button-wrapper " +
          "{ visibility: hidden !important; }",
      });
      shot = await canvas.first().screenshot(job.canvasScreenshot ? { path: job.canvasScreenshot } : {});
      report.canvasBytes = shot.length;
      await hide.evaluate((element) => element.remove());
    }
    if (job.screenshot) await page.screenshot({ path: job.screenshot, fullPage: true });
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(report));
}

main().catch((error) => {
  process.stderr.write(`${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
