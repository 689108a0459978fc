document.getElementById("app").textContent="Pocketlytics";
