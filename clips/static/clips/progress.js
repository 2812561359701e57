// A listen's progress (docs/plays.md, "How far listeners get"): what each player of
// templates/clips/_player.html has played, sent to the clip's /listens on pause,
// seek, end and when the page goes, and every 10 s while it plays; nothing when
// nothing new was heard. The player holds the preview, a stretch of the clip that
// starts data-offset seconds in: positions are sent on the clip's own timeline, so
// every curve lines up with its waveform. The server merges what it is sent, so a
// report repeats what came before. Reports as the listen ends (the player ended,
// the page goes) say so: the first counts the listen in Prometheus.
"use strict";

const PLAYING_REPORT_MS = 10000;
const MAX_RANGES = 100; // what the API takes

for (const audio of document.querySelectorAll("audio[data-clip]")) {
  const url = `/api/v1/clips/${audio.dataset.clip}/listens`;
  const offset = Number(audio.dataset.offset || 0);
  let sent = "";
  let timer = null;

  const report = (ended = false) => {
    const heard = [];
    for (let i = 0; i < audio.played.length; i++) {
      const start = audio.played.start(i) + offset;
      const end = audio.played.end(i) + offset;
      if (end > start) heard.push([+start.toFixed(2), +end.toFixed(2)]);
    }
    const body = JSON.stringify({ heard: heard.slice(-MAX_RANGES), ended });
    if (!heard.length || body === sent) return;
    sent = body;
    // A string goes as text/plain: no CORS preflight, no CSRF token needed.
    navigator.sendBeacon(url, body);
  };
  const stop = () => {
    clearInterval(timer);
    timer = null;
  };

  audio.addEventListener("playing", () => {
    timer ??= setInterval(report, PLAYING_REPORT_MS);
  });
  audio.addEventListener("pause", () => (stop(), report()));
  audio.addEventListener("ended", () => (stop(), report(true)));
  audio.addEventListener("seeked", () => report());
  addEventListener("pagehide", () => report(true));
}
