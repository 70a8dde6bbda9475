// Applies the reader's saved theme before the first paint. Without a saved
// choice (or without JavaScript) CSS follows prefers-color-scheme.
try{var t=localStorage.getItem("accepted.theme");if(t==="dark"||t==="light")document.documentElement.dataset.theme=t}catch(e){}
