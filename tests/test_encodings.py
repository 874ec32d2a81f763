"""Every encoding: files in legacy code pages, a few rows and a few hundred, read back to their text."""

from __future__ import annotations

import codecs
import random

import pandas as pd
import pytest
from hostile_inputs import RUSSIAN_TITLES, russian_csv

from explorer import InputError, load_table
from explorer.load import guess_encoding

SENTENCES = {
    "ja": ["機械学習による画像認識の研究", "深層学習を用いた自然言語処理", "東京大学の研究者が新しい手法を提案した",
           "データの前処理と特徴量の抽出について", "ニューラルネットワークの学習は時間がかかる", "日本語の文章を自動で要約する"],
    "ru": ["Машинное обучение для распознавания изображений", "Обработка естественного языка с помощью нейронных сетей",
           "Исследователи из Москвы предложили новый метод", "Предварительная обработка данных и извлечение признаков",
           "Обучение глубоких сетей занимает много времени", "Автоматическое реферирование русских текстов"],
    "zh": ["基于机器学习的图像识别研究", "使用深度学习的自然语言处理", "北京大学的研究人员提出了一种新方法", "数据预处理与特征提取",
           "神经网络的训练需要很长时间", "中文文本的自动摘要"],
    "zh_tw": ["基於機器學習的影像辨識研究", "使用深度學習的自然語言處理", "臺灣大學的研究人員提出了一種新方法", "資料前處理與特徵擷取",
              "類神經網路的訓練需要很長的時間", "中文文本的自動摘要"],
    "ko": ["기계 학습을 이용한 이미지 인식 연구", "딥러닝을 사용한 자연어 처리", "서울대학교 연구진이 새로운 방법을 제안했다",
           "데이터 전처리와 특징 추출", "신경망 학습에는 많은 시간이 걸린다", "한국어 문서의 자동 요약"],
    "el": ["Μηχανική μάθηση για την αναγνώριση εικόνων", "Επεξεργασία φυσικής γλώσσας με νευρωνικά δίκτυα",
           "Ερευνητές από την Αθήνα πρότειναν μια νέα μέθοδο", "Προεπεξεργασία δεδομένων και εξαγωγή χαρακτηριστικών",
           "Η εκπαίδευση των δικτύων απαιτεί πολύ χρόνο", "Άρθρο για την αυτόματη περίληψη ελληνικών κειμένων"],
    "fr": ["Apprentissage automatique pour la reconnaissance d’images", "Traitement du langage naturel à l’aide de réseaux",
           "Des chercheurs de l’École normale ont proposé une méthode", "Café crème et crêpes à la française",
           "Noël à Paris, déjà vu – « hélas »", "Garçon, l’addition s’il vous plaît"],
    "de": ["Maschinelles Lernen für die Bilderkennung", "Verarbeitung natürlicher Sprache mit neuronalen Netzen",
           "Forscher aus Zürich schlugen eine neue Methode vor", "Vorverarbeitung der Daten und Merkmalsextraktion",
           "Das Training großer Netze dauert sehr lange", "Automatische Zusammenfassung deutscher Texte über Ökonomie"],
    "cs": ["Příliš žluťoučký kůň úpěl ďábelské ódy", "Česká republika je stát ve střední Evropě",
           "Strojové učení a zpracování přirozeného jazyka", "Výzkumníci z Prahy navrhli novou metodu",
           "Předzpracování dat a extrakce příznaků", "Trénování hlubokých sítí trvá dlouho"],
    "tr": ["Makine öğrenmesi ile görüntü tanıma", "Doğal dil işleme için sinir ağları",
           "İstanbul'dan araştırmacılar yeni bir yöntem önerdi", "Verilerin ön işlenmesi ve öznitelik çıkarımı",
           "Derin ağların eğitimi çok zaman alır", "Türkçe metinlerin otomatik özetlenmesi"],
}
# (encoding the file is written in, its language); the first ten are the issue's.
ENCODINGS = [("shift_jis", "ja"), ("cp932", "ja"), ("cp1251", "ru"), ("koi8_r", "ru"), ("gb18030", "zh"),
             ("big5", "zh_tw"), ("euc_kr", "ko"), ("iso8859_7", "el"), ("cp1252", "fr"), ("latin_1", "de"),
             ("cp1250", "cs"), ("cp1254", "tr")]
SHORT, LONG = 3, 300


def papers(language: str, rows: int) -> pd.DataFrame:
    """``rows`` rows of title and abstract made of the language's sentences, in a fixed shuffled order."""
    sentences, pick = SENTENCES[language], random.Random(rows)
    return pd.DataFrame({
        "title": [f"{sentences[i % 6]} {i}" for i in range(rows)],
        "abstract": [f"{sentences[pick.randrange(6)]}. {sentences[pick.randrange(6)]}" for _ in range(rows)],
    })


@pytest.mark.parametrize("rows", [SHORT, LONG], ids=["short", "long"])
@pytest.mark.parametrize(("encoding", "language"), ENCODINGS, ids=[e for e, _ in ENCODINGS])
def test_a_legacy_encoding_reads_back_to_the_original_text(encoding, language, rows):
    frame = papers(language, rows)
    table = load_table(frame.to_csv(index=False).encode(encoding), name="papers.csv")
    assert table.frame["title"].tolist() == frame["title"].tolist()
    assert table.frame["abstract"].tolist() == frame["abstract"].tolist()
    # The note names the encoding used, one that decodes these bytes to this text.
    assert any(f"it was read as {table.encoding}" in note for note in table.notes), table.notes
    assert frame.to_csv(index=False).encode(encoding).decode(table.encoding) == frame.to_csv(index=False)


@pytest.mark.parametrize("text", [
    "title\nCafé\n", "title,abstract\nÉté,Noël\n", "title\nCafé crème\nNaïve élève\n",
    "title\nCafé crème\nNaïve élève\nDéjà vu\nGarçon\nNoël à Paris\n", "nom\nFrançois\nHélène\n",
    "titre,résumé\nLes données,Très bien\n", "t\nSão Paulo\n", "t\nEspaña año\n", "t\nœuvre – grâce\n",
])
def test_short_cp1252_french_and_friends_stay_cp1252(text):
    # charset-normalizer alone reads these as cp1006, cp1250, cp1257 or Big5.
    table = load_table(text.encode("cp1252"), name="short.csv")
    assert table.encoding == "cp1252"
    assert table.frame.to_csv(index=False) == text


def test_the_note_names_the_encoding_and_where_utf8_failed():
    data = ("title\nplain ascii first\n" + papers("ru", LONG).to_csv(index=False)).encode("koi8_r")
    table = load_table(data, name="ru.csv")
    assert table.encoding == "koi8-r"
    assert ("The file is not valid UTF-8 (first bad byte on line 4); it was read as koi8-r. If the text looks "
            "wrong, save the file as UTF-8 and upload it again.") in table.notes


def test_utf8_and_its_boms_come_first():
    frame = papers("ja", SHORT)
    for encoding, expected in [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("utf-16", "utf-16")]:
        table = load_table(frame.to_csv(index=False).encode(encoding), name="ja.csv")
        assert table.encoding == expected and table.notes == []
        assert table.frame["title"].tolist() == frame["title"].tolist()


def test_binary_data_is_still_refused():
    data = random.Random(0).randbytes(4096)
    with pytest.raises(InputError, match="this is binary data, not text"):
        load_table(data, name="noise.csv")


def test_lines_in_two_encodings_are_each_read_in_their_own():
    utf8 = papers("fr", SHORT).to_csv(index=False).encode("utf-8")
    legacy = papers("ru", SHORT).to_csv(index=False, header=False).encode("cp1251")
    table = load_table(utf8 + legacy, name="pasted.csv")
    expected = pd.concat([papers("fr", SHORT), papers("ru", SHORT)], ignore_index=True)
    assert table.frame["title"].tolist() == expected["title"].tolist()
    assert table.encoding == "utf-8+cp1251"
    assert any(note.startswith("The file mixes encodings: 3 line(s) are not UTF-8 (line 5, 6, 7) and were read "
                               "as cp1251, the others as UTF-8.") for note in table.notes), table.notes


# --- issue 24: short Cyrillic files, and the code page common for the language when readings are close ------

CYRILLIC = ["cp1251", "koi8_r", "mac_cyrillic"]


@pytest.mark.parametrize("year", [False, True], ids=["title", "title_year"])
@pytest.mark.parametrize("rows", [1, 2, 24])
@pytest.mark.parametrize("encoding", CYRILLIC)
def test_short_russian_files_come_back_as_written(encoding, rows, year):
    # Before: one cp1251 line came back as cp1250 (Ęîńěč÷ĺńęčĺ), KOI8-R lines as Shift_JIS (汙ﾓﾍﾉﾞﾅ),
    # a mac-cyrillic line with a year as cp1250.
    titles = RUSSIAN_TITLES[:rows]
    table = load_table(russian_csv(encoding, titles, year=year), name="ru.csv")
    assert table.frame["title"].tolist() == titles
    assert table.encoding == codecs.lookup(encoding).name
    assert any(f"it was read as {table.encoding}." in note for note in table.notes), table.notes


def test_cp1251_is_preferred_when_mac_cyrillic_reads_as_well():
    # Э is 0xDD in cp1251 and Ё in mac-cyrillic: both readings are Russian words; cp1251 is the common one.
    data = "title\nЭкономика и рынок\n".encode("cp1251")
    assert data.decode("mac_cyrillic") == "title\nЁкономика и рынок\n"
    assert guess_encoding(data) == "cp1251"


def test_a_genuine_mac_cyrillic_file_stays_mac_cyrillic():
    # Uppercase letters are where the two differ: mac-cyrillic's К, П and Ч are Љ, Џ and — in cp1251.
    text = "title\nКосмические полёты\nПодводные лодки\nЧёрное море\n"
    assert text.encode("mac_cyrillic").decode("cp1251") == "title\nЉосмические полЮты\nЏодводные лодки\n—Юрное море\n"
    assert guess_encoding(text.encode("mac_cyrillic")) == "mac-cyrillic"
