// First-run setup and invite pages: read the one-time token from the URL
// fragment (never sent to the server in a request line or a Referer) and post the form.
(function () {
  const form = document.querySelector('form[data-endpoint]');
  const result = document.getElementById('result');
  const secret = decodeURIComponent(location.hash.slice(1));
  if (!form || !result) return;
  if (!secret) {
    result.innerHTML = '<p class="error">This link has no token. Use the exact link printed by the server.</p>';
    return;
  }
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const body = Object.fromEntries(new FormData(form).entries());
    if (form.dataset.kind === 'setup') body.setupToken = secret;
    else body.inviteToken = secret;
    result.textContent = 'Working…';
    const response = await fetch(form.dataset.endpoint, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (response.ok) {
      history.replaceState(null, '', location.pathname);
      form.hidden = true;
      const email = form.dataset.kind === 'setup' ? body.email : 'you@example.com';
      result.innerHTML = '<p>Done. Create your first token with:</p><pre></pre>';
      result.querySelector('pre').textContent =
        `curl -X POST ${location.origin}/api/v1/tokens -H 'content-type: application/json' \\\n  -d '{"name":"my token","email":"${email}","password":"your password","scopes":["tokens:read","tokens:write"]}'`;
      return;
    }
    const problem = await response.json().catch(() => ({ detail: response.statusText }));
    const details = (problem.errors || []).map((e) => `${e.field}: ${e.message}`).join('; ');
    result.innerHTML = '<p class="error"></p>';
    result.querySelector('p').textContent = details || problem.detail || 'Something went wrong.';
  });
})();
