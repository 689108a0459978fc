// Sign in (users, or superusers through _superusers) and sign up.
import { h } from '../dom.js';
import { pb } from '../api.js';
import { navigate } from '../router.js';

function field(label, input) {
  return h('label', { class: 'field' }, h('span', {}, label), input);
}

function errorBox() {
  return h('p', { class: 'error', role: 'alert', hidden: true });
}

function showError(box, err, fallback) {
  const data = err?.response?.data || {};
  const details = Object.entries(data)
    .map(([k, v]) => `${k}: ${v?.message || v}`)
    .join('; ');
  box.textContent = details || err?.response?.message || err?.message || fallback;
  box.hidden = false;
}

function afterSignIn() {
  const next = new URLSearchParams(location.search).get('next');
  navigate(next && next.startsWith('/') && !next.startsWith('//') ? next : '/', { replace: true });
}

// signupAllowed asks the app whether others than superusers may create an
// account (the users collection's create rule), without a failing request.
async function signupAllowed() {
  try {
    const res = await pb.send('/api/analytics/signup', { method: 'GET' });
    return res?.open === true;
  } catch {
    return false;
  }
}

export function loginView() {
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'username', required: true });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const admin = h('input', { type: 'checkbox', name: 'superuser' });
  const err = errorBox();
  const submit = h('button', { class: 'btn primary', type: 'submit' }, 'Sign in');
  const signup = h('p', { class: 'muted', hidden: true }, 'No account yet? ', h('a', { href: `/signup${location.search}` }, 'Create one'));

  const form = h(
    'form',
    {
      class: 'card form',
      onsubmit: async (e) => {
        e.preventDefault();
        err.hidden = true;
        submit.disabled = true;
        try {
          await pb.collection(admin.checked ? '_superusers' : 'users').authWithPassword(email.value.trim(), password.value);
          afterSignIn();
        } catch (e2) {
          showError(err, e2.status === 400 ? { message: 'Wrong e-mail or password.' } : e2, 'Could not sign in.');
        } finally {
          submit.disabled = false;
        }
      },
    },
    h('h1', {}, 'Sign in'),
    field('E-mail', email),
    field('Password', password),
    h('label', { class: 'check' }, admin, h('span', {}, 'Sign in as a superuser (administrator)')),
    err,
    submit,
    signup,
  );

  signupAllowed().then((ok) => (signup.hidden = !ok));
  queueMicrotask(() => email.focus());
  return { title: 'Sign in', el: h('section', { class: 'page auth' }, form) };
}

export function signupView() {
  // An invitation's page passes the invited address.
  const invited = new URLSearchParams(location.search).get('email') || '';
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'username', required: true, value: invited });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'new-password', minlength: 8, required: true });
  const confirm = h('input', { type: 'password', name: 'passwordConfirm', autocomplete: 'new-password', minlength: 8, required: true });
  const err = errorBox();
  const submit = h('button', { class: 'btn primary', type: 'submit' }, 'Create account');

  const form = h(
    'form',
    {
      class: 'card form',
      onsubmit: async (e) => {
        e.preventDefault();
        err.hidden = true;
        if (password.value !== confirm.value) {
          showError(err, { message: 'The passwords differ.' });
          return;
        }
        submit.disabled = true;
        try {
          await pb.collection('users').create({ email: email.value.trim(), password: password.value, passwordConfirm: confirm.value });
          await pb.collection('users').authWithPassword(email.value.trim(), password.value);
          afterSignIn();
        } catch (e2) {
          showError(err, e2, e2.status === 403 ? 'Sign-up is closed on this server.' : 'Could not create the account.');
        } finally {
          submit.disabled = false;
        }
      },
    },
    h('h1', {}, 'Create an account'),
    field('E-mail', email),
    field('Password (8 characters or more)', password),
    field('Repeat the password', confirm),
    err,
    submit,
    h('p', { class: 'muted' }, 'Have an account? ', h('a', { href: `/login${location.search}` }, 'Sign in')),
  );
  queueMicrotask(() => email.focus());
  return { title: 'Create an account', el: h('section', { class: 'page auth' }, form) };
}
