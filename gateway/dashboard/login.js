// The login page: exchanges an operator's name and password for a session
// cookie (HttpOnly, set by the server), then opens the dashboard.
"use strict";

document.getElementById("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = document.getElementById("login-error");
  error.hidden = true;
  const body = {
    name: document.getElementById("login-name").value.trim(),
    password: document.getElementById("login-password").value.trim(),
  };
  let response;
  try {
    response = await fetch("/dashboard/api/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch (e) {
    error.textContent = "The dashboard cannot be reached: " + e.message;
    error.hidden = false;
    return;
  }
  if (response.ok) {
    window.location.assign("/dashboard/");
    return;
  }
  let message = "Login failed (" + response.status + ")";
  try {
    message = (await response.json()).errorMessage || message;
  } catch (e) {
    // keep the status line
  }
  error.textContent = message;
  error.hidden = false;
});
