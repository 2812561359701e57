// Click-to-seek on the waveforms of templates/clips/_waveform.html: a click seeks the
// clip's player to that point of the clip and plays it. Without this script each
// waveform is a picture and the player works as before.
"use strict";

for (const waveform of document.querySelectorAll(".clip svg.waveform[data-duration]")) {
  const audio = waveform.closest(".clip").querySelector("audio");
  if (!audio) continue;
  waveform.classList.add("seekable");
  waveform.addEventListener("click", (event) => {
    const box = waveform.getBoundingClientRect();
    const fraction = Math.min(Math.max((event.clientX - box.left) / box.width, 0), 1);
    // Before its metadata loads (preload="none") the player knows no duration yet.
    const duration = Number.isFinite(audio.duration)
      ? audio.duration
      : Number(waveform.dataset.duration);
    audio.currentTime = fraction * duration;
    audio.play();
  });
}
