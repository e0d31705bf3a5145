// First-run setup and invite pages: read the one-time token from the URL
// fragment (never sent to the server in a request line or a Referer) and post the form.
(function () {
  const forms = Array.from(document.querySelectorAll('form[data-endpoint]'));
  const result = document.getElementById('result');
  const secret = decodeURIComponent(location.hash.slice(1));
  if (forms.length === 0 || !result) return;
  if (!secret) {
    result.innerHTML = '<p class="error">This link has no token. Use the exact link printed by the server.</p>';
    return;
  }

  async function post(url, body, headers) {
    return fetch(url, { method: 'POST', credentials: 'same-origin', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  }

  async function showProblem(response) {
    const problem = await response.json().catch(() => ({ detail: response.statusText }));
    const details = (problem.errors || []).map((e) => `${e.field}: ${e.message}`).join('; ');
    result.innerHTML = '<p class="error"></p>';
    result.querySelector('p').textContent = details || problem.detail || 'Something went wrong.';
  }

  // Someone with an account signs in, then accepts with the session and its CSRF token: no password is set.
  async function acceptSignedIn(form, fields) {
    const signedIn = await post('/api/v1/auth/login', { email: fields.email, password: fields.password });
    if (!signedIn.ok) return { response: signedIn };
    const { csrfToken } = await signedIn.json();
    return { response: await post(form.dataset.endpoint, { inviteToken: secret }, { 'x-csrf-token': csrfToken }), email: fields.email };
  }

  async function submit(form) {
    const fields = Object.fromEntries(new FormData(form).entries());
    result.textContent = 'Working…';
    let outcome;
    if (form.dataset.kind === 'invite-signed-in') outcome = await acceptSignedIn(form, fields);
    else if (form.dataset.kind === 'setup') outcome = { response: await post(form.dataset.endpoint, { ...fields, setupToken: secret }), email: fields.email };
    else outcome = { response: await post(form.dataset.endpoint, { ...fields, inviteToken: secret }), email: 'you@example.com' };
    if (!outcome.response.ok) return showProblem(outcome.response);
    history.replaceState(null, '', location.pathname);
    for (const each of forms) each.hidden = true;
    result.innerHTML = '<p>Done. Create your first token with:</p><pre></pre>';
    result.querySelector('pre').textContent =
      `curl -X POST ${location.origin}/api/v1/tokens -H 'content-type: application/json' \\\n  -d '{"name":"my token","email":"${outcome.email}","password":"your password","scopes":["tokens:read","tokens:write"]}'`;
  }

  for (const form of forms) {
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      submit(form);
    });
  }
})();
