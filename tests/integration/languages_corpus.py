# ruff: noqa: RUF001  (sentences in many scripts)
"""Customer messages in 36 languages, written for Deputy's tests: the same four messages in each
(a late order, a return question, a cancellation, a thank-you), from 9 to 20 words. Keys are
the ISO 639-1 codes `deputy.llm.language` reports (Norwegian Bokmål is fastText's `no`)."""

from __future__ import annotations

CORPUS: dict[str, tuple[str, str, str, str]] = {
    "en": (
        "Hello, I ordered a pair of shoes last week and they still have not arrived.",
        "Can I return the jacket if it turns out to be too small?",
        "Please cancel my subscription, I no longer need it.",
        "Thanks a lot for your help, have a nice day.",
    ),
    "es": (
        "Hola, pedí un par de zapatos la semana pasada y todavía no han llegado.",
        "¿Puedo devolver la chaqueta si me queda pequeña?",
        "Por favor, cancelen mi suscripción, ya no la necesito.",
        "Muchas gracias por su ayuda, que tenga un buen día.",
    ),
    "fr": (
        "Bonjour, j'ai commandé une paire de chaussures la semaine dernière et elles ne sont "
        "toujours pas arrivées.",
        "Est-ce que je peux retourner la veste si elle est trop petite ?",
        "Merci d'annuler mon abonnement, je n'en ai plus besoin.",
        "Merci beaucoup pour votre aide, bonne journée.",
    ),
    "de": (
        "Hallo, ich habe letzte Woche ein Paar Schuhe bestellt und sie sind immer noch nicht "
        "angekommen.",
        "Kann ich die Jacke zurückschicken, wenn sie zu klein ist?",
        "Bitte kündigen Sie mein Abonnement, ich brauche es nicht mehr.",
        "Vielen Dank für Ihre Hilfe und einen schönen Tag noch.",
    ),
    "it": (
        "Buongiorno, la settimana scorsa ho ordinato un paio di scarpe e non sono ancora arrivate.",
        "Posso restituire la giacca se è troppo piccola?",
        "Per favore annullate il mio abbonamento, non mi serve più.",
        "Grazie mille per l'aiuto, buona giornata.",
    ),
    "pt": (
        "Olá, encomendei um par de sapatos na semana passada e ainda não chegaram.",
        "Posso devolver o casaco se ficar pequeno?",
        "Por favor, cancelem a minha assinatura, já não preciso dela.",
        "Muito obrigado pela ajuda, tenha um bom dia.",
    ),
    "nl": (
        "Hallo, ik heb vorige week een paar schoenen besteld en ze zijn nog steeds niet "
        "aangekomen.",
        "Kan ik de jas terugsturen als hij te klein is?",
        "Wilt u mijn abonnement opzeggen, ik heb het niet meer nodig.",
        "Hartelijk dank voor uw hulp, nog een fijne dag.",
    ),
    "sv": (
        "Hej, jag beställde ett par skor förra veckan och de har fortfarande inte kommit.",
        "Kan jag returnera jackan om den är för liten?",
        "Var snäll och säg upp min prenumeration, jag behöver den inte längre.",
        "Tack så mycket för hjälpen, ha en bra dag.",
    ),
    "da": (
        "Hej, jeg bestilte et par sko i sidste uge, og de er stadig ikke kommet.",
        "Kan jeg returnere jakken, hvis den er for lille?",
        "Vær venlig at opsige mit abonnement, jeg har ikke brug for det længere.",
        "Mange tak for hjælpen, hav en god dag.",
    ),
    "no": (
        "Hei, jeg bestilte et par sko forrige uke, og de har fortsatt ikke kommet.",
        "Kan jeg returnere jakken hvis den er for liten?",
        "Vennligst si opp abonnementet mitt, jeg trenger det ikke lenger.",
        "Tusen takk for hjelpen, ha en fin dag.",
    ),
    "fi": (
        "Hei, tilasin viime viikolla kengät, eivätkä ne ole vieläkään saapuneet.",
        "Voinko palauttaa takin, jos se on liian pieni?",
        "Peruuttakaa tilaukseni, en tarvitse sitä enää.",
        "Kiitos paljon avusta, hyvää päivänjatkoa.",
    ),
    "pl": (
        "Dzień dobry, w zeszłym tygodniu zamówiłem parę butów i nadal nie dotarły.",
        "Czy mogę zwrócić kurtkę, jeśli okaże się za mała?",
        "Proszę anulować moją subskrypcję, już jej nie potrzebuję.",
        "Bardzo dziękuję za pomoc, miłego dnia.",
    ),
    "cs": (
        "Dobrý den, minulý týden jsem si objednal boty a pořád nedorazily.",
        "Můžu vrátit bundu, když mi bude malá?",
        "Prosím zrušte moje předplatné, už ho nepotřebuji.",
        "Moc děkuji za pomoc, hezký den.",
    ),
    "sk": (
        "Dobrý deň, minulý týždeň som si objednal topánky a stále neprišli.",
        "Môžem vrátiť bundu, ak mi bude malá?",
        "Prosím, zrušte moje predplatné, už ho nepotrebujem.",
        "Ďakujem veľmi pekne za pomoc, pekný deň.",
    ),
    "hu": (
        "Jó napot, múlt héten rendeltem egy pár cipőt, és még mindig nem érkezett meg.",
        "Visszaküldhetem a kabátot, ha túl kicsi?",
        "Kérem, mondják le az előfizetésemet, már nincs rá szükségem.",
        "Nagyon köszönöm a segítséget, szép napot!",
    ),
    "ro": (
        "Bună ziua, am comandat o pereche de pantofi săptămâna trecută și încă nu au sosit.",
        "Pot să returnez geaca dacă este prea mică?",
        "Vă rog să îmi anulați abonamentul, nu mai am nevoie de el.",
        "Vă mulțumesc mult pentru ajutor, o zi bună.",
    ),
    "bg": (
        "Здравейте, миналата седмица поръчах чифт обувки и все още не са пристигнали.",
        "Мога ли да върна якето, ако ми е малко?",
        "Моля, прекратете абонамента ми, вече не ми трябва.",
        "Благодаря ви много за помощта, приятен ден.",
    ),
    "ru": (
        "Здравствуйте, на прошлой неделе я заказал пару обуви, и она до сих пор не пришла.",
        "Можно ли вернуть куртку, если она окажется мала?",
        "Пожалуйста, отмените мою подписку, она мне больше не нужна.",
        "Большое спасибо за помощь, хорошего дня.",
    ),
    "uk": (
        "Добрий день, минулого тижня я замовив пару взуття, і воно досі не надійшло.",
        "Чи можу я повернути куртку, якщо вона буде замала?",
        "Будь ласка, скасуйте мою підписку, вона мені більше не потрібна.",
        "Щиро дякую за допомогу, гарного дня.",
    ),
    "el": (
        "Γεια σας, παρήγγειλα ένα ζευγάρι παπούτσια την προηγούμενη εβδομάδα και ακόμα δεν "
        "έχουν έρθει.",
        "Μπορώ να επιστρέψω το μπουφάν αν είναι μικρό;",
        "Παρακαλώ ακυρώστε τη συνδρομή μου, δεν τη χρειάζομαι πια.",
        "Ευχαριστώ πολύ για τη βοήθεια, καλή σας μέρα.",
    ),
    "tr": (
        "Merhaba, geçen hafta bir çift ayakkabı sipariş ettim ve hâlâ gelmedi.",
        "Ceket küçük gelirse iade edebilir miyim?",
        "Lütfen aboneliğimi iptal edin, artık ihtiyacım yok.",
        "Yardımınız için çok teşekkürler, iyi günler.",
    ),
    "ar": (
        "مرحبا، طلبت زوجا من الأحذية الأسبوع الماضي ولم يصل بعد.",
        "هل يمكنني إرجاع السترة إذا كانت صغيرة؟",
        "من فضلك ألغِ اشتراكي، لم أعد بحاجة إليه.",
        "شكرا جزيلا على مساعدتك، أتمنى لك يوما سعيدا.",
    ),
    "he": (
        "שלום, הזמנתי זוג נעליים בשבוע שעבר והן עדיין לא הגיעו.",
        "אפשר להחזיר את המעיל אם הוא קטן מדי?",
        "בבקשה לבטל את המנוי שלי, אני כבר לא צריך אותו.",
        "תודה רבה על העזרה, יום טוב.",
    ),
    "fa": (
        "سلام، هفته گذشته یک جفت کفش سفارش دادم و هنوز نرسیده است.",
        "آیا می‌توانم کاپشن را اگر کوچک بود پس بدهم؟",
        "لطفا اشتراک من را لغو کنید، دیگر به آن نیازی ندارم.",
        "خیلی ممنون از کمکتان، روز خوبی داشته باشید.",
    ),
    "hi": (
        "नमस्ते, मैंने पिछले हफ्ते जूतों की एक जोड़ी मंगवाई थी और वह अभी तक नहीं पहुंची है।",
        "अगर जैकेट छोटी निकली तो क्या मैं उसे वापस कर सकता हूं?",
        "कृपया मेरी सदस्यता रद्द कर दीजिए, अब मुझे इसकी ज़रूरत नहीं है।",
        "आपकी मदद के लिए बहुत धन्यवाद, आपका दिन शुभ हो।",
    ),
    "bn": (
        "নমস্কার, আমি গত সপ্তাহে এক জোড়া জুতো অর্ডার করেছিলাম কিন্তু এখনও পৌঁছায়নি।",
        "জ্যাকেটটা ছোট হলে কি আমি ফেরত দিতে পারব?",
        "দয়া করে আমার সাবস্ক্রিপশন বাতিল করুন, আমার আর এটার দরকার নেই।",
        "আপনার সাহায্যের জন্য অনেক ধন্যবাদ, আপনার দিনটি ভালো কাটুক।",
    ),
    "th": (
        "สวัสดีครับ ผมสั่งรองเท้าไปหนึ่งคู่เมื่อสัปดาห์ที่แล้ว แต่ยังไม่ได้รับเลย",
        "ถ้าเสื้อแจ็คเก็ตตัวเล็กไป ผมขอคืนได้ไหมครับ",
        "กรุณายกเลิกการสมัครสมาชิกของผมด้วย ผมไม่ต้องการแล้ว",
        "ขอบคุณมากสำหรับความช่วยเหลือ ขอให้มีวันที่ดีนะครับ",
    ),
    "vi": (
        "Xin chào, tuần trước tôi đã đặt một đôi giày nhưng đến giờ vẫn chưa nhận được.",
        "Tôi có thể trả lại áo khoác nếu nó quá nhỏ không?",
        "Vui lòng hủy gói đăng ký của tôi, tôi không cần nó nữa.",
        "Cảm ơn bạn rất nhiều vì đã giúp đỡ, chúc một ngày tốt lành.",
    ),
    "id": (
        "Halo, saya memesan sepasang sepatu minggu lalu dan sampai sekarang belum datang.",
        "Apakah saya bisa mengembalikan jaket ini kalau ternyata terlalu kecil?",
        "Tolong batalkan langganan saya, saya sudah tidak membutuhkannya lagi.",
        "Terima kasih banyak atas bantuannya, semoga hari Anda menyenangkan.",
    ),
    "ja": (
        "こんにちは、先週靴を一足注文したのですが、まだ届いていません。",
        "ジャケットが小さすぎた場合、返品できますか？",
        "定期購読を解約してください。もう必要ありません。",
        "ご対応いただきありがとうございました。良い一日を。",
    ),
    "zh": (
        "你好，我上周订了一双鞋，到现在还没有收到。",
        "如果夹克太小，我可以退货吗？",
        "请帮我取消订阅，我不再需要了。",
        "非常感谢你的帮助，祝你有美好的一天。",
    ),
    "ko": (
        "안녕하세요, 지난주에 신발 한 켤레를 주문했는데 아직 도착하지 않았어요.",
        "재킷이 너무 작으면 반품할 수 있나요?",
        "제 구독을 취소해 주세요. 더 이상 필요하지 않아요.",
        "도와주셔서 정말 감사합니다. 좋은 하루 보내세요.",
    ),
    "sw": (
        "Habari, niliagiza jozi ya viatu wiki iliyopita na bado havijafika.",
        "Je, naweza kurudisha koti kama ni dogo sana?",
        "Tafadhali sitisha usajili wangu, siuhitaji tena.",
        "Asante sana kwa msaada wako, uwe na siku njema.",
    ),
    "ca": (
        "Hola, la setmana passada vaig demanar un parell de sabates i encara no han arribat.",
        "Puc tornar la jaqueta si em queda petita?",
        "Si us plau, cancel·leu la meva subscripció, ja no la necessito.",
        "Moltes gràcies per la vostra ajuda, que tingueu un bon dia.",
    ),
    "lt": (
        "Laba diena, praėjusią savaitę užsisakiau porą batų, bet jie vis dar neatkeliavo.",
        "Ar galiu grąžinti striukę, jei ji bus per maža?",
        "Prašau atšaukti mano prenumeratą, man jos nebereikia.",
        "Labai ačiū už pagalbą, geros dienos.",
    ),
    "et": (
        "Tere, tellisin eelmisel nädalal paari kingi ja need pole ikka veel kohale jõudnud.",
        "Kas ma saan jope tagastada, kui see on liiga väike?",
        "Palun tühistage minu tellimus, ma ei vaja seda enam.",
        "Suur tänu abi eest, ilusat päeva!",
    ),
}
