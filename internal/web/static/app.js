// netchat's chat page. It speaks the line protocol of the terminal
// (docs/PROTOCOL.md) over /ws, one WebSocket text frame per line, and
// mirrors a terminal: the room's lines scroll above one input line; the
// first line typed answers the nickname prompt, every later one is sent
// as typed.
//
// Everything the server sends is user-controlled text. It only ever
// reaches the page through textContent and text nodes, never as HTML.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const logEl = $('log');
  const input = $('input');
  const sendBtn = $('send');
  const stateEl = $('state');
  const reconnectBtn = $('reconnect');
  const countEl = $('online-count');
  const listEl = $('people-list');
  const peopleEl = $('people');
  const titleEl = $('title');
  const toggleBtn = $('people-toggle');

  const MAX_LINES = 2000; // older lines are dropped from the page
  const MAX_LISTED = 300; // names shown in the list; the rest are counted
  const MAX_RECALL = 50; // sent lines recalled with the arrow keys

  // The room's notices (docs/PROTOCOL.md). Nicknames contain no blanks.
  const reGreeting = /^Welcome to netchat \((.*)\)! (\d+) users online\. Please enter a nickname:$/;
  const reWelcome = /^\* Welcome, (\S+)! (\d+) users online\. Type \/help for commands\.$/;
  const reJoined = /^\* (\S+) joined \((\d+) online\)$/;
  const reLeft = /^\* (\S+) left \((\d+) online\)(?:: .*)?$/;
  const reRenamed = /^\* (\S+) is now known as (\S+)$/;
  const reWho = /^\* (\d+) online: (.*)$/;
  const reBatch = /^\* \d+ joined, \d+ left \((\d+) online\)$/;
  const reChat = /^(\[private\] |\[\d\d:\d\d\] )?([^\s:]+)(: )/;

  let ws = null;
  let phase = 'nick'; // 'nick' until the server welcomes us, then 'chat'
  let nickPending = false; // a nickname was sent and has no answer yet
  let me = '';
  let lastNick = '';
  let roomName = '';
  const online = new Map(); // folded nickname -> nickname
  let count = 0;
  // One entry per /who in flight, in order: true when the page sent it
  // itself (its reply only refreshes the list and is not shown).
  let whoQueue = [];
  let lastWho = 0;
  let whoTimer = 0;
  const recall = [];
  let recallAt = 0;

  // fold approximates the server's PRECIS case mapping, so that the list
  // treats Alice and alice as one user, as the room does.
  const fold = (nick) => nick.normalize('NFKC').toLowerCase();
  const isBlank = (s) => /^[ \t]*$/.test(s);

  function pad2(n) {
    return n < 10 ? '0' + n : String(n);
  }

  function classify(text) {
    if (text.startsWith('* ')) return 'notice';
    if (text.startsWith('! ')) return 'error';
    if (text.startsWith('[private')) return 'private';
    if (text.startsWith('-- ')) return 'local';
    return 'msg';
  }

  function appendLine(text, extra) {
    const atBottom = logEl.scrollTop + logEl.clientHeight >= logEl.scrollHeight - 8;
    const kind = classify(text);
    const line = document.createElement('div');
    line.className = 'line ' + kind + (extra ? ' ' + extra : '');
    const time = document.createElement('span');
    time.className = 'time';
    const now = new Date();
    time.textContent = pad2(now.getHours()) + ':' + pad2(now.getMinutes());
    const body = document.createElement('span');
    body.className = 'text';
    const m = kind === 'msg' || kind === 'private' ? reChat.exec(text) : null;
    if (m) {
      const nick = document.createElement('span');
      nick.className = 'nick';
      nick.textContent = m[2];
      body.append(document.createTextNode(m[1] || ''), nick,
        document.createTextNode(text.slice(m[0].length - m[3].length)));
    } else {
      body.textContent = text;
    }
    line.append(time, body);
    logEl.append(line);
    while (logEl.childElementCount > MAX_LINES) logEl.firstElementChild.remove();
    if (atBottom) logEl.scrollTop = logEl.scrollHeight;
  }

  function setState(state, label) {
    stateEl.className = 'state ' + state;
    stateEl.textContent = label || state;
    stateEl.dataset.state = state;
    const open = state === 'connected';
    input.disabled = !open;
    sendBtn.disabled = !open;
    reconnectBtn.hidden = state !== 'disconnected';
  }

  function setPrompt() {
    input.placeholder = phase === 'nick' ? 'Choose a nickname' : 'Message, or /help';
  }

  // peopleVersion counts changes to the people list (online, count, me).
  let peopleVersion = 0;

  function renderPeople() {
    countEl.textContent = String(count);
    const names = Array.from(online.values());
    names.sort((a, b) => {
      const x = a.toLowerCase();
      const y = b.toLowerCase();
      return x < y ? -1 : x > y ? 1 : 0;
    });
    const items = names.slice(0, MAX_LISTED).map((name) => {
      const li = document.createElement('li');
      li.textContent = name;
      if (name === me) li.className = 'me';
      return li;
    });
    if (names.length > MAX_LISTED) {
      const li = document.createElement('li');
      li.className = 'more';
      li.textContent = 'and ' + (names.length - MAX_LISTED) + ' more';
      items.push(li);
    }
    listEl.replaceChildren(...items);
  }

  function send(line) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(line);
    return true;
  }

  function requestWho() {
    if (phase !== 'chat' || !send('/who')) return;
    whoQueue.push(true);
    lastWho = Date.now();
  }

  // scheduleWho refreshes the list after a summed join/leave notice, at
  // most once a second, and less often in big rooms, where the list is
  // long and the notices come every second.
  function scheduleWho() {
    if (whoTimer) return;
    const gap = Math.max(1000, count * 10);
    const wait = lastWho + gap - Date.now();
    if (wait <= 0) {
      requestWho();
      return;
    }
    whoTimer = setTimeout(() => {
      whoTimer = 0;
      requestWho();
    }, wait);
  }

  function addUser(nick) {
    peopleVersion++;
    online.set(fold(nick), nick);
  }

  // onLine handles one line from the server: it keeps the state (phase,
  // nickname, who is online) current and shows the line.
  function onLine(text) {
    let show = true;
    let m;
    // Most lines are messages: the people list is redrawn only for those
    // that change it (sorting thousands of names per message would not do).
    const before = peopleVersion;
    if ((m = reGreeting.exec(text))) {
      roomName = m[1];
      titleEl.textContent = 'netchat · ' + roomName;
      document.title = roomName + ' · netchat';
      count = Number(m[2]);
      peopleVersion++;
      phase = 'nick';
      nickPending = false;
      if (lastNick && !input.value) {
        input.value = lastNick;
        input.select();
      }
    } else if (phase === 'nick' && (m = reWelcome.exec(text))) {
      phase = 'chat';
      nickPending = false;
      me = m[1];
      peopleVersion++;
      lastNick = me;
      online.clear();
      peopleVersion++;
      addUser(me);
      count = Number(m[2]);
      peopleVersion++;
      requestWho();
    } else if (phase === 'nick' && text.startsWith('! ')) {
      // Refused (nickname taken: …, invalid nickname: …, line too long):
      // the next line typed is the nickname again.
      nickPending = false;
    } else if ((m = reJoined.exec(text))) {
      // A /me can mimic a notice ("* bob joined (3 online)" from bob); a
      // real join is of somebody not yet listed.
      if (!online.has(fold(m[1]))) {
        addUser(m[1]);
        count = Number(m[2]);
        peopleVersion++;
      }
    } else if ((m = reLeft.exec(text))) {
      online.delete(fold(m[1]));
      peopleVersion++;
      count = Number(m[2]);
      peopleVersion++;
    } else if ((m = reRenamed.exec(text))) {
      if (fold(m[1]) === fold(me)) {
        me = m[2];
        peopleVersion++;
        lastNick = me;
      }
      online.delete(fold(m[1]));
      peopleVersion++;
      addUser(m[2]);
    } else if ((m = reBatch.exec(text))) {
      count = Number(m[1]);
      peopleVersion++;
      scheduleWho();
    } else if (whoQueue.length > 0 && (m = reWho.exec(text))) {
      show = !whoQueue.shift();
      count = Number(m[1]);
      peopleVersion++;
      online.clear();
      peopleVersion++;
      for (const name of m[2].split(', ')) {
        if (name) addUser(name);
      }
    } else if (text === '! slow down' || text === '! flooding') {
      // A dropped /who has no reply; forget which replies are expected
      // rather than hide a reply the user asked for.
      whoQueue = [];
    }
    setPrompt();
    if (peopleVersion !== before) renderPeople();
    if (show) appendLine(text);
  }

  // localEcho is what the others see of a line we send, when the room
  // sends us nothing back for it (broadcasts and /me; docs/PROTOCOL.md):
  // the page shows it as they see it. It follows the room's parser.
  function localEcho(line) {
    const bare = line.replace(/[ \t]+$/, '');
    if (bare === 'l' || bare === 'help' || bare === 'quit' || bare === 'byebye') return null;
    if (line.startsWith('b:')) {
      const text = line.slice(2);
      return isBlank(text) ? null : me + ': ' + text;
    }
    if (line.startsWith('c:') || line.startsWith('n:')) return null;
    if (line.startsWith('//')) return me + ': ' + line.slice(1);
    if (line.startsWith('/')) {
      const sp = line.indexOf(' ');
      const word = (sp < 0 ? line : line.slice(0, sp)).toLowerCase();
      if (word !== '/me') return null;
      const rest = sp < 0 ? '' : line.slice(sp + 1).replace(/^ +/, '');
      return isBlank(rest) ? null : '* ' + me + ' ' + rest;
    }
    return me + ': ' + line;
  }

  function isWho(line) {
    const bare = line.replace(/[ \t]+$/, '');
    if (bare === 'l') return true;
    const word = line.split(' ', 1)[0].toLowerCase();
    return word === '/who' || word === '/list' || word === '/names';
  }

  function submit() {
    const line = input.value;
    if (isBlank(line)) {
      input.value = '';
      return;
    }
    // One nickname at a time: what is typed before the answer stays in
    // the input instead of becoming a second attempt or a message.
    if (phase === 'nick' && nickPending) return;
    if (!send(line)) return;
    input.value = '';
    if (recall[recall.length - 1] !== line) recall.push(line);
    if (recall.length > MAX_RECALL) recall.shift();
    recallAt = recall.length;
    if (phase === 'nick') {
      nickPending = true;
      return;
    }
    if (isWho(line)) whoQueue.push(false);
    const echo = localEcho(line);
    if (echo !== null) appendLine(echo, 'own');
  }

  function connect() {
    const url = new URL('ws', location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    url.search = '';
    url.hash = '';
    phase = 'nick';
    nickPending = false;
    me = '';
    whoQueue = [];
    online.clear();
    count = 0;
    renderPeople();
    setPrompt();
    setState('connecting', 'connecting…');
    const sock = new WebSocket(url);
    ws = sock;
    sock.onopen = () => {
      if (ws !== sock) return;
      setState('connected');
      input.focus();
    };
    sock.onmessage = (ev) => {
      if (ws !== sock || typeof ev.data !== 'string') return;
      onLine(ev.data);
    };
    sock.onclose = (ev) => {
      if (ws !== sock) return;
      ws = null;
      if (whoTimer) {
        clearTimeout(whoTimer);
        whoTimer = 0;
      }
      phase = 'nick';
      online.clear();
      count = 0;
      renderPeople();
      setState('disconnected');
      let why = '';
      if (ev.code !== 1000 && ev.code !== 1005) why = ' (code ' + ev.code + (ev.reason ? ': ' + ev.reason : '') + ')';
      appendLine('-- disconnected' + why);
    };
  }

  input.addEventListener('keydown', (ev) => {
    if (ev.isComposing) return;
    if (ev.key === 'Enter') {
      ev.preventDefault();
      submit();
    } else if (ev.key === 'ArrowUp' && recallAt > 0) {
      ev.preventDefault();
      recallAt--;
      input.value = recall[recallAt];
    } else if (ev.key === 'ArrowDown' && recallAt < recall.length) {
      ev.preventDefault();
      recallAt++;
      input.value = recallAt < recall.length ? recall[recallAt] : '';
    }
  });
  sendBtn.addEventListener('click', () => {
    submit();
    input.focus();
  });
  reconnectBtn.addEventListener('click', () => {
    appendLine('-- reconnecting');
    connect();
  });
  toggleBtn.addEventListener('click', () => {
    const shown = getComputedStyle(peopleEl).display !== 'none';
    document.body.classList.toggle('hide-people', shown);
    document.body.classList.toggle('show-people', !shown);
    toggleBtn.setAttribute('aria-expanded', String(!shown));
  });
  toggleBtn.setAttribute('aria-expanded', String(getComputedStyle(peopleEl).display !== 'none'));

  connect();
})();
