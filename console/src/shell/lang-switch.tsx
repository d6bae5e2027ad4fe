/** The language toggle (zh-CN ⇄ English), remembered across visits. */
import { lang, setLang, t } from '../i18n.ts';
import { useValue } from '../signal.ts';

/** A button that switches the console language. */
export function LangSwitch() {
  const current = useValue(lang);
  const next = current === 'en' ? 'zh-CN' : 'en';
  return (
    <button
      type="button"
      class="btn btn-ghost lang-switch"
      lang={next}
      aria-label={t('lang.switchLabel')}
      onClick={() => setLang(next)}
    >
      {t('lang.switch')}
    </button>
  );
}
