/** Entry point of the citysense web console. */
import { render } from 'preact';
import { App } from './app.tsx';
import { lang } from './i18n.ts';
import './styles.css';

document.documentElement.lang = lang.get();
const root = document.getElementById('app');
if (root) render(<App />, root);
