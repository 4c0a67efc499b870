// The check-in page's camera scan: the browser's BarcodeDetector reads the ticket's QR code
// (KEPU-T:<code>) into the code field and submits. Without it (or without a camera) the
// button stays hidden and the code is typed.
(function () {
  "use strict";
  var button = document.getElementById("scan");
  var video = document.getElementById("scanner");
  var field = document.getElementById("f-code");
  if (!button || !("BarcodeDetector" in window) || !navigator.mediaDevices) { return; }
  button.hidden = false;
  button.addEventListener("click", function () {
    var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } })
      .then(function (stream) {
        video.srcObject = stream;
        video.hidden = false;
        return video.play().then(function () {
          var look = function () {
            detector.detect(video).then(function (found) {
              if (found.length) {
                stream.getTracks().forEach(function (t) { t.stop(); });
                field.value = found[0].rawValue;
                document.getElementById("check-in-form").submit();
              } else {
                window.requestAnimationFrame(look);
              }
            }).catch(function () { window.requestAnimationFrame(look); });
          };
          look();
        });
      })
      .catch(function () { button.hidden = true; });
  });
})();
