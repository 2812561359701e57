// Clicks on the waveforms of templates/clips/_waveform.html. On the listener's pages a
// click seeks the clip's player to that point and plays it; the player holds the
// preview, a stretch of the clip (shaded), so a point outside it seeks to its nearer
// end. In the admin a click chooses where the preview starts (the form's field; saved,
// the preview is rendered again). Without this script each waveform is a picture and
// the player works as before.
"use strict";

function clickedSeconds(waveform, event) {
  const box = waveform.getBoundingClientRect();
  const fraction = Math.min(Math.max((event.clientX - box.left) / box.width, 0), 1);
  return fraction * Number(waveform.dataset.duration);
}

for (const waveform of document.querySelectorAll(".clip svg.waveform[data-duration]")) {
  const audio = waveform.closest(".clip").querySelector("audio");
  if (!audio) continue;
  const start = Number(waveform.dataset.previewStart || 0);
  const length = Number(waveform.dataset.previewDuration || waveform.dataset.duration);
  waveform.classList.add("seekable");
  waveform.addEventListener("click", (event) => {
    const seconds = clickedSeconds(waveform, event) - start;
    audio.currentTime = Math.min(Math.max(seconds, 0), length);
    audio.play();
  });
}

for (const waveform of document.querySelectorAll("svg.waveform[data-preview-input]")) {
  const input = document.getElementById(waveform.dataset.previewInput);
  if (!input) continue;
  const shade = waveform.querySelector(".preview-window");
  waveform.style.cursor = "pointer";
  waveform.addEventListener("click", (event) => {
    const seconds = clickedSeconds(waveform, event);
    input.value = seconds.toFixed(1);
    if (shade) {
      const width = waveform.viewBox.baseVal.width;
      shade.setAttribute("x", (width * seconds) / Number(waveform.dataset.duration));
    }
  });
}
